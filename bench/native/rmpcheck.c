/*
 * Native baseline for the rmp-check benchmark (bench/rmp-check.ts): the same RMP layout (16-byte
 * entries as four little-endian u32 words, one flat chunk up to 2^28 pages, else 2^18-entry chunks),
 * the same table contents and the same address sequence (xorshift32, same seeds), and the same check:
 * a host write through a 4 KB mapping must find the page's entry unassigned and its 2 MB-aligned entry
 * not an assigned 2 MB entry (APM Table 15-39, Hypervisor-Owned). Prints one JSON line per case.
 *
 * usage: rmpcheck <pages> <checks> <repeats> <fill-seed> <index-seed>
 * Built at bench time with `cc -O2` into bench/native/build/ (git-ignored).
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The same two geometries as psp-firmware/rmp/table.ts: flat (one chunk) up to 2^28 pages, else
 * chunks of 2^18 entries. */
#define FLAT_MAX_PAGES (1ull << 28)
#define CHUNK_SHIFT 18
#define CHUNK_ENTRIES (1u << CHUNK_SHIFT)
#define W0_ASSIGNED 0x1u
#define W0_ASSIGNED_2M 0x3u
#define PF_RMP_PRESENT_WRITE 0x80000003u

typedef struct {
  uint64_t covered_pages;
  uint32_t **chunks;
  size_t nchunks;
  uint32_t shift;
  uint32_t mask;
  uint64_t chunk_entries;
} rmp_t;

static uint32_t xorshift32(uint32_t x) {
  x ^= x << 13;
  x ^= x >> 17;
  x ^= x << 5;
  return x;
}

static uint32_t *entry(rmp_t *r, uint64_t pfn) {
  return &r->chunks[pfn >> r->shift][(pfn & r->mask) << 2];
}

/* Writes an assigned entry (ASID 1, GPA = sPA) and counts it in its head's subpage count. */
static void assign(rmp_t *r, uint64_t pfn, uint32_t pagesize) {
  uint32_t *e = entry(r, pfn);
  e[0] = (e[0] & 0xff8u) | W0_ASSIGNED | (pagesize << 1) | (uint32_t)((pfn & 0xfffff) << 12);
  e[1] = (uint32_t)((pfn >> 20) & 0x7ffff) | (1u << 19);
  e[2] = 0x1f;
  e[3] = 0;
  if (pfn % 512 != 0) {
    uint32_t *h = entry(r, pfn - pfn % 512);
    uint32_t count = ((h[0] >> 3) & 0x1ff) + 1;
    h[0] = (h[0] & ~0xff8u) | (count << 3);
  }
}

/* Same population as populateRmp() in bench/rmp-check.ts: per 2 MB region, xorshift32 & 3 selects
 * 0 nothing, 1 an assigned 2 MB page, 2 every 4th 4K page assigned, 3 all 512 4K pages assigned. */
static void populate(rmp_t *r, uint32_t seed) {
  uint32_t x = seed;
  uint64_t regions = r->covered_pages / 512;
  for (uint64_t g = 0; g < regions; g++) {
    x = xorshift32(x);
    uint64_t base = g * 512;
    switch (x & 3) {
    case 1:
      assign(r, base, 1);
      break;
    case 2:
      for (uint64_t i = 0; i < 512; i += 4) assign(r, base + i, 0);
      break;
    case 3:
      for (uint64_t i = 0; i < 512; i++) assign(r, base + i, 0);
      break;
    default:
      break;
    }
  }
}

static inline uint32_t check(const rmp_t *r, uint64_t spa) {
  uint64_t pfn = spa >> 12;
  if (pfn >= r->covered_pages) return 0;
  const uint32_t *c = r->chunks[pfn >> r->shift];
  uint32_t idx = (uint32_t)(pfn & r->mask);
  uint32_t hw0 = c[(idx & ~511u) << 2];
  uint32_t bad = (c[idx << 2] & W0_ASSIGNED) | ((hw0 & W0_ASSIGNED_2M) == W0_ASSIGNED_2M);
  return bad * PF_RMP_PRESENT_WRITE; /* branch-free: random tables fault about half the time */
}

/* One call per check, like Platform.hostAccess(). */
__attribute__((noinline)) uint32_t host_access(const rmp_t *r, uint64_t spa) { return check(r, spa); }

/* Many checks per call by page frame number, like Platform.hostAccessBatchPfn(): uint32 pfns in,
 * one result bit per address out (32 per word), returns the number of faults. */
__attribute__((noinline)) uint64_t host_access_batch(const rmp_t *r, const uint32_t *pfns, size_t n, uint32_t *out_bits) {
  uint64_t faults = 0;
  for (size_t base = 0; base < n; base += 32) {
    size_t end = base + 32 < n ? base + 32 : n;
    uint32_t bits = 0;
    for (size_t i = base; i < end; i++) bits |= (check(r, (uint64_t)pfns[i] << 12) != 0) << (i - base);
    out_bits[base / 32] = bits;
    faults += (uint64_t)__builtin_popcount(bits);
  }
  return faults;
}

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static volatile uint64_t sink;

static void run_case(const rmp_t *r, const char *order, const uint64_t *spas, const uint32_t *pfns, size_t n,
                     uint32_t *out, int repeats) {
  double *single = malloc(sizeof(double) * (size_t)repeats);
  double *batch = malloc(sizeof(double) * (size_t)repeats);
  uint64_t faults_single = 0, faults_batch = 0;
  for (int rep = -3; rep < repeats; rep++) { /* 3 warm-up rounds */
    double t0 = now_ns();
    uint64_t f = 0;
    for (size_t i = 0; i < n; i++) f += host_access(r, spas[i]) != 0;
    double t1 = now_ns();
    uint64_t g = host_access_batch(r, pfns, n, out);
    double t2 = now_ns();
    sink = f + g;
    faults_single = f;
    faults_batch = g;
    if (rep >= 0) {
      single[rep] = (t1 - t0) / (double)n;
      batch[rep] = (t2 - t1) / (double)n;
    }
  }
  qsort(single, (size_t)repeats, sizeof(double), cmp_double);
  qsort(batch, (size_t)repeats, sizeof(double), cmp_double);
  printf("{\"order\":\"%s\",\"api\":\"single\",\"nsPerCheck\":%.4f,\"faults\":%" PRIu64 "}\n", order,
         single[repeats / 2], faults_single);
  printf("{\"order\":\"%s\",\"api\":\"batch\",\"nsPerCheck\":%.4f,\"faults\":%" PRIu64 "}\n", order,
         batch[repeats / 2], faults_batch);
  free(single);
  free(batch);
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s <pages> <checks> <repeats> <fill-seed> <index-seed>\n", argv[0]);
    return 2;
  }
  rmp_t r;
  r.covered_pages = strtoull(argv[1], NULL, 0);
  size_t n = (size_t)strtoull(argv[2], NULL, 0);
  int repeats = atoi(argv[3]);
  uint32_t fill_seed = (uint32_t)strtoul(argv[4], NULL, 0);
  uint32_t index_seed = (uint32_t)strtoul(argv[5], NULL, 0);
  if (r.covered_pages == 0 || r.covered_pages % 512 != 0 || r.covered_pages > (1ull << 32) || n == 0 ||
      repeats < 1) {
    fprintf(stderr, "rmpcheck: pages must be a non-zero multiple of 512 up to 2^32, checks and repeats > 0\n");
    return 2;
  }
  int flat = r.covered_pages <= FLAT_MAX_PAGES;
  r.shift = flat ? 31 : CHUNK_SHIFT;
  r.mask = flat ? 0x7fffffffu : CHUNK_ENTRIES - 1;
  r.chunk_entries = flat ? r.covered_pages : CHUNK_ENTRIES;
  r.nchunks = (size_t)((r.covered_pages + r.chunk_entries - 1) / r.chunk_entries);
  r.chunks = calloc(r.nchunks, sizeof(uint32_t *));
  for (size_t c = 0; c < r.nchunks; c++) {
    uint64_t entries = r.covered_pages - (uint64_t)c * r.chunk_entries;
    if (entries > r.chunk_entries) entries = r.chunk_entries;
    r.chunks[c] = calloc((size_t)entries * 4, sizeof(uint32_t));
    if (r.chunks[c] == NULL) {
      fprintf(stderr, "rmpcheck: out of memory\n");
      return 3;
    }
  }
  populate(&r, fill_seed);

  uint64_t *spas = malloc(sizeof(uint64_t) * n);
  uint32_t *pfns = malloc(sizeof(uint32_t) * n);
  uint32_t *out = malloc(sizeof(uint32_t) * (n / 32 + 1));
  uint32_t x = index_seed;
  for (size_t i = 0; i < n; i++) {
    x = xorshift32(x);
    pfns[i] = (uint32_t)(x % r.covered_pages);
    spas[i] = (uint64_t)pfns[i] << 12;
  }
  run_case(&r, "random", spas, pfns, n, out, repeats);
  for (size_t i = 0; i < n; i++) {
    pfns[i] = (uint32_t)(i % r.covered_pages);
    spas[i] = (uint64_t)pfns[i] << 12;
  }
  run_case(&r, "sequential", spas, pfns, n, out, repeats);
  return 0;
}
