// SPDX-License-Identifier: GPL-2.0-only
/*
 * snpsim-agent: the guest side of the snpsim harness. Started over SSH as a fixed command, it
 * writes the hello line, then reads protocol v1 request lines (PROTOCOL.md) from stdin until EOF,
 * validates each strictly, and answers each with one line: module operations through the snpsim
 * module's kABI (../kmod/snpsim_kabi.h), CPU offline/online through sysfs itself.
 *
 * Environment, for tests (build with -DSNPSIM_AGENT_NO_ENV to ignore it):
 *   SNPSIM_AGENT_DEV      the module interface, default /sys/kernel/debug/snpsim/ctl; a Unix
 *                         stream socket there is spoken to the same way (a test's fake module)
 *   SNPSIM_AGENT_SYSFS    the CPU sysfs directory, default /sys/devices/system/cpu
 *   SNPSIM_AGENT_CPUINFO  the cpuinfo file, default /proc/cpuinfo
 *
 * Exit status: 0 after EOF and the last response; 1 if stdout breaks.
 */
#define _GNU_SOURCE

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "snpsim_proto.h"

enum mod_state {
	MOD_ABSENT,		/* no module interface: module=none, requests answer no-module */
	MOD_READY,
	MOD_ABI_MISMATCH,	/* module=<its version>, requests answer no-module reason=abi */
};

struct agent {
	const char *dev;
	const char *sysfs;
	const char *cpuinfo;
	int fd;
	enum mod_state mod;
	int open_errno;			/* why an existing interface could not be opened, or 0 */
	struct snpsim_kresp info;	/* SNPSIM_OP_INFO */
};

struct reader {
	char buf[4096];
	size_t pos;
	size_t len;
	int eof;
};

static const char *env_or(const char *name, const char *fallback)
{
#ifdef SNPSIM_AGENT_NO_ENV
	(void)name;
	return fallback;
#else
	const char *value = getenv(name);

	return value && *value ? value : fallback;
#endif
}

/* ---- I/O helpers ---- */

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One read() returns a whole kABI response from debugfs; a socket may need several. */
static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;

	while (len) {
		ssize_t n = read(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int rd_byte(struct reader *r)
{
	ssize_t n;

	if (r->pos == r->len) {
		if (r->eof)
			return -1;
		do
			n = read(STDIN_FILENO, r->buf, sizeof(r->buf));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			r->eof = 1;
			return -1;
		}
		r->pos = 0;
		r->len = (size_t)n;
	}
	return (unsigned char)r->buf[r->pos++];
}

/*
 * Reads one line into @line (at most SP_MAX_LINE bytes kept, the rest of an overlong line is
 * consumed). Returns 0 at EOF when nothing was read, else 1 with @framing set.
 */
static int read_line(struct reader *r, char *line, size_t *len, enum sp_framing *framing)
{
	size_t kept = 0, total = 0;
	int c;

	for (;;) {
		c = rd_byte(r);
		if (c < 0 && total == 0)
			return 0;
		if (c < 0 || c == '\n')
			break;
		if (kept < SP_MAX_LINE)
			line[kept++] = (char)c;
		total++;
	}
	if (total > SP_MAX_LINE - 1)
		*framing = SP_LINE_TOO_LONG;
	else
		*framing = c < 0 ? SP_LINE_UNTERMINATED : SP_LINE;
	*len = kept;
	return 1;
}

static void emit(struct sp_out *out, uint32_t seq)
{
	if (!sp_out_end(out)) {
		/* Cannot happen with v1's keys; never write a line longer than the protocol allows. */
		sp_out_err(out, seq, "failed");
		sp_out_dec(out, "errno", EOVERFLOW);
		sp_out_end(out);
	}
	if (write_full(STDOUT_FILENO, out->buf, out->len)) {
		fprintf(stderr, "snpsim-agent: cannot write to stdout: %s\n", strerror(errno));
		exit(1);
	}
}

/* ---- the module ---- */

static int mod_exchange(struct agent *a, const struct snpsim_kreq *req, struct snpsim_kresp *resp)
{
	int err = write_full(a->fd, req, sizeof(*req));

	return err ? err : read_full(a->fd, resp, sizeof(*resp));
}

static int mod_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (stat(path, &st) < 0)
		return -1;
	if (!S_ISSOCK(st.st_mode))
		return open(path, O_RDWR | O_CLOEXEC);
	if (strlen(path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		int err = errno;

		close(fd);
		errno = err;
		fd = -1;
	}
	return fd;
}

/* Opens the module interface and asks SNPSIM_OP_INFO (answered whatever the kABI version). */
static void mod_open(struct agent *a)
{
	struct snpsim_kreq req = { .abi = SNPSIM_KABI_VERSION, .op = SNPSIM_OP_INFO };

	a->mod = MOD_ABSENT;
	a->open_errno = 0;
	a->fd = mod_connect(a->dev);
	if (a->fd < 0) {
		/* Absent is "not loaded"; anything else (e.g. not root) is worth telling. */
		if (errno != ENOENT)
			a->open_errno = errno;
		return;
	}
	if (mod_exchange(a, &req, &a->info) || a->info.op != SNPSIM_OP_INFO ||
	    a->info.status != SNPSIM_ST_OK) {
		/* Something is there but does not speak the kABI. */
		close(a->fd);
		a->fd = -1;
		a->open_errno = EPROTO;
		return;
	}
	a->mod = a->info.abi == SNPSIM_KABI_VERSION ? MOD_READY : MOD_ABI_MISMATCH;
}

/* ---- platform details ---- */

/* Number of CPUs in a sysfs cpulist file ("0-3,5"), or -1. */
static long count_cpulist(const char *dir, const char *name)
{
	char path[PATH_MAX], buf[4096];
	unsigned long lo, hi;
	long count = 0;
	char *p, *end;
	FILE *f;

	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
		return -1;
	f = fopen(path, "re");
	if (!f)
		return -1;
	p = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!p)
		return -1;
	buf[strcspn(buf, "\n")] = '\0';
	while (*p) {
		if (*p < '0' || *p > '9')
			return -1;
		lo = strtoul(p, &end, 10);
		hi = lo;
		if (*end == '-') {
			p = end + 1;
			if (*p < '0' || *p > '9')
				return -1;
			hi = strtoul(p, &end, 10);
		}
		if (hi < lo)
			return -1;
		count += (long)(hi - lo + 1);
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		p = end;
	}
	return count;
}

/* "key<tabs>: value" of /proc/cpuinfo; returns the value or NULL. */
static char *cpuinfo_split(char *line, const char *key)
{
	char *colon = strchr(line, ':');
	size_t n;

	if (!colon)
		return NULL;
	n = (size_t)(colon - line);
	while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
		n--;
	if (strlen(key) != n || strncmp(line, key, n) != 0)
		return NULL;
	colon++;
	while (*colon == ' ')
		colon++;
	colon[strcspn(colon, "\n")] = '\0';
	return colon;
}

static int parse_u64(const char *s, int base, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-' || *s == '+' || *s == ' ')
		return 0;
	errno = 0;
	*out = strtoull(s, &end, base);
	return !errno && !*end;
}

struct cpu_ident {
	int have_family, have_model, have_stepping, have_microcode;
	uint64_t family, model, stepping, microcode;
};

/* family/model/stepping/microcode of the first processor block. */
static void read_cpu_ident(const char *path, struct cpu_ident *id)
{
	char line[512], *v;
	FILE *f = fopen(path, "re");

	memset(id, 0, sizeof(*id));
	if (!f)
		return;
	while (fgets(line, sizeof(line), f) && line[0] != '\n') {
		if ((v = cpuinfo_split(line, "cpu family")))
			id->have_family = parse_u64(v, 10, &id->family);
		else if ((v = cpuinfo_split(line, "model")))
			id->have_model = parse_u64(v, 10, &id->model);
		else if ((v = cpuinfo_split(line, "stepping")))
			id->have_stepping = parse_u64(v, 10, &id->stepping);
		else if ((v = cpuinfo_split(line, "microcode")))
			id->have_microcode = parse_u64(v, 16, &id->microcode);
	}
	fclose(f);
}

/* The "apicid" of processor @cpu in cpuinfo (online CPUs only). */
static int cpuinfo_apic(const char *path, uint32_t cpu, uint64_t *apic)
{
	char line[512], *v;
	int in_cpu = 0, found = 0;
	uint64_t n;
	FILE *f = fopen(path, "re");

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		if ((v = cpuinfo_split(line, "processor")))
			in_cpu = parse_u64(v, 10, &n) && n == cpu;
		else if (in_cpu && (v = cpuinfo_split(line, "apicid")))
			found = parse_u64(v, 10, apic);
	}
	fclose(f);
	return found;
}

static void hello_pairs(struct agent *a, struct sp_out *out)
{
	struct cpu_ident id;
	struct utsname u;
	char version[32];
	long n;

	sp_out_dec(out, "protocol", SP_PROTOCOL_VERSION);
	sp_out_token(out, "agent", SP_AGENT_VERSION, 0);
	sp_out_token(out, "backend", "module", 0);
	if (uname(&u) == 0)
		sp_out_token(out, "kernel", u.release, 1);
	if (a->mod == MOD_ABSENT) {
		sp_out_token(out, "module", "none", 0);
	} else {
		sp_module_version(a->info.val[1], version, sizeof(version));
		sp_out_token(out, "module", version, 0);
	}
	if (a->mod == MOD_READY) {
		sp_out_hex(out, "sev_status", a->info.val[2]);
		sp_out_dec(out, "vmpl", a->info.val[3]);
	}
	n = count_cpulist(a->sysfs, "online");
	if (n >= 0)
		sp_out_dec(out, "cpus", (uint64_t)n);
	n = count_cpulist(a->sysfs, "possible");
	if (n >= 0)
		sp_out_dec(out, "possible_cpus", (uint64_t)n);
	read_cpu_ident(a->cpuinfo, &id);
	if (id.have_family)
		sp_out_dec(out, "family", id.family);
	if (id.have_model)
		sp_out_dec(out, "model", id.model);
	if (id.have_stepping)
		sp_out_dec(out, "stepping", id.stepping);
	if (id.have_microcode)
		sp_out_hex(out, "microcode", id.microcode);
}

/* ---- verbs the agent serves itself ---- */

static int cpu_apic(struct agent *a, uint32_t cpu, uint64_t *apic)
{
	struct snpsim_kreq req = { .abi = SNPSIM_KABI_VERSION, .op = SNPSIM_OP_CPU_APIC };
	struct snpsim_kresp resp;

	req.arg[0] = cpu;
	if (a->mod == MOD_READY && !mod_exchange(a, &req, &resp) && resp.status == SNPSIM_ST_OK) {
		*apic = resp.val[0];
		return 1;
	}
	return cpuinfo_apic(a->cpuinfo, cpu, apic);
}

/* cpu-offline / cpu-online: write 0 / 1 to <sysfs>/cpuN/online; Linux does the rest. */
static void cpu_hotplug(struct agent *a, const struct sp_request *r, int online, struct sp_out *out)
{
	uint32_t cpu = (uint32_t)r->v[SP_K_CPU];
	char path[PATH_MAX];
	int have_apic = 0, err = 0, fd;
	uint64_t apic = 0;
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/cpu%u/online", a->sysfs, cpu) >= (int)sizeof(path)) {
		err = ENAMETOOLONG;
	} else {
		/* An offline CPU is no longer in cpuinfo: ask before. */
		if (!online)
			have_apic = cpu_apic(a, cpu, &apic);
		/* As `echo 0 > online` opens it; sysfs ignores the truncation. */
		fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
		if (fd < 0) {
			err = errno;
		} else {
			do
				n = write(fd, online ? "1" : "0", 1);
			while (n < 0 && errno == EINTR);
			if (n != 1)
				err = n < 0 ? errno : EIO;
			if (close(fd) < 0 && !err)
				err = errno;
		}
	}
	if (err) {
		sp_out_err(out, r->seq, "failed");
		sp_out_dec(out, "errno", (uint64_t)err);
		return;
	}
	if (online)
		have_apic = cpu_apic(a, cpu, &apic);
	sp_out_ok(out, r->seq);
	if (have_apic)
		sp_out_dec(out, "apic", apic);
}

static void dispatch(struct agent *a, const struct sp_request *r, struct sp_out *out)
{
	struct snpsim_kresp kresp;
	struct snpsim_kreq kreq;

	switch (r->verb) {
	case SP_V_HELLO:
		sp_out_ok(out, r->seq);
		hello_pairs(a, out);
		return;
	case SP_V_CPU_OFFLINE:
		cpu_hotplug(a, r, 0, out);
		return;
	case SP_V_CPU_ONLINE:
		cpu_hotplug(a, r, 1, out);
		return;
	case SP_V_HOST_SET_MP_STATE:
		/* A host step: only the simulated guest (host_steps=1) can do it. */
		sp_out_err(out, r->seq, "unsupported");
		return;
	default:
		break;
	}
	if (a->mod != MOD_READY) {
		sp_out_err(out, r->seq, "no-module");
		if (a->mod == MOD_ABI_MISMATCH)
			sp_out_token(out, "reason", "abi", 0);
		else if (a->open_errno > 0 && a->open_errno <= SP_ERRNO_MAX)
			sp_out_dec(out, "errno", (uint64_t)a->open_errno);
		return;
	}
	if (sp_to_kreq(r, &kreq) || mod_exchange(a, &kreq, &kresp) || kresp.op != kreq.op) {
		sp_out_err(out, r->seq, "no-module");
		sp_out_token(out, "reason", "transport", 0);
		return;
	}
	sp_from_kresp(r, &kresp, out);
}

int main(void)
{
	struct sp_session session = { 0, 0 };
	struct reader reader = { .pos = 0, .len = 0, .eof = 0 };
	struct agent agent;
	struct sp_request req;
	struct sp_error err;
	enum sp_framing framing;
	char line[SP_MAX_LINE];
	struct sp_out out;
	size_t len;

	signal(SIGPIPE, SIG_IGN);
	agent.dev = env_or("SNPSIM_AGENT_DEV", SNPSIM_CTL_PATH);
	agent.sysfs = env_or("SNPSIM_AGENT_SYSFS", "/sys/devices/system/cpu");
	agent.cpuinfo = env_or("SNPSIM_AGENT_CPUINFO", "/proc/cpuinfo");
	mod_open(&agent);

	out.len = 0;
	out.overflow = 0;
	out.buf[0] = '\0';
	sp_out_raw(&out, "snpsim-agent");
	hello_pairs(&agent, &out);
	emit(&out, 0);

	while (read_line(&reader, line, &len, &framing)) {
		if (sp_parse_request(&session, line, len, framing, &req, &err)) {
			sp_out_bad_request(&out, &err);
			emit(&out, err.has_seq ? err.seq : 0);
			continue;
		}
		dispatch(&agent, &req, &out);
		emit(&out, req.seq);
	}
	/* Closing the module file frees this batch's pages where that is safe. */
	if (agent.fd >= 0)
		close(agent.fd);
	return 0;
}
