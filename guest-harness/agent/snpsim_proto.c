// SPDX-License-Identifier: GPL-2.0-only
/*
 * The agent protocol v1 (PROTOCOL.md): strict parsing, canonical encoding, kABI mapping.
 *
 * Choices where PROTOCOL.md is silent, shared with the TypeScript codec
 * (guest-harness/protocol/): a line's 1024 bytes include its \n; numbers have one spelling
 * (decimal without leading zeros, lower-case hex without leading zeros, "0x0" for zero) in
 * requests as in responses; seq is 0..2^32-1; an empty valid list is written "none"; a malformed
 * line is answered "<seq> err code=bad-request reason=<token>" with seq 0 when none can be read.
 */
#include "snpsim_proto.h"

#include <stdio.h>
#include <string.h>

#define BIT32(n) (1U << (n))

enum sp_type { SP_T_DEC, SP_T_HEX, SP_T_ENUM, SP_T_LIST };

struct sp_key_desc {
	const char *name;
	enum sp_type type;
	uint64_t max;			/* SP_T_DEC, SP_T_HEX */
	uint32_t oneof;			/* SP_T_DEC: bit n allows value n; 0 allows 0..max */
	const char *const *names;	/* SP_T_ENUM, SP_T_LIST */
	unsigned int n_names;
};

struct sp_verb_desc {
	const char *name;
	uint32_t required;
	uint32_t optional;
};

/* Enum names, in the order of the kABI enums they index. */
static const char *const sp_placements[] = { "split", "2m-aligned" };
static const char *const sp_memories[] = { "private", "shared", "unvalidated" };
static const char *const sp_templates[] = { "linux", "ovmf", "zero" };
static const char *const sp_fields[SNPSIM_F_COUNT] = {
	"sev_features", "vmpl", "cpl", "efer", "cr0", "cr3", "cr4", "dr6", "dr7", "rflags", "rip",
	"rsp", "rax", "g_pat", "xcr0", "mxcsr", "x87_fcw", "x87_ftw", "cs_selector", "cs_attrib",
	"cs_limit", "cs_base",
};
/* Field widths in bytes ([LX] struct sev_es_save_area; ap-creation.md A.6). */
static const unsigned char sp_field_width[SNPSIM_F_COUNT] = {
	8, 1, 1, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 4, 2, 2, 2, 2, 4, 8,
};
/* valid= names; bit i is SNPSIM_VALID_* bit i. */
static const char *const sp_valid_names[] = { "exit_code", "info1", "info2", "rax" };

#define ENUM(n) SP_T_ENUM, 0, 0, n, sizeof(n) / sizeof(n[0])
#define U64 UINT64_MAX
#define U32 0xffffffffULL

static const struct sp_key_desc sp_keys[SP_K_COUNT] = {
	[SP_K_H] = { "h", SP_T_DEC, SNPSIM_HANDLES - 1, 0, NULL, 0 },
	[SP_K_PLACEMENT] = { "placement", ENUM(sp_placements) },
	[SP_K_MEMORY] = { "memory", ENUM(sp_memories) },
	[SP_K_TEMPLATE] = { "template", ENUM(sp_templates) },
	[SP_K_STUB] = { "stub", SP_T_DEC, 1, 0, NULL, 0 },
	[SP_K_FIELD] = { "field", ENUM(sp_fields) },
	[SP_K_VALUE] = { "value", SP_T_HEX, U64, 0, NULL, 0 },
	/* vmsa-poke: inside the 4 KiB VMSA page. */
	[SP_K_OFFSET] = { "offset", SP_T_HEX, 0xfff, 0, NULL, 0 },
	[SP_K_WIDTH] = { "width", SP_T_DEC, 8, BIT32(1) | BIT32(2) | BIT32(4) | BIT32(8), NULL, 0 },
	[SP_K_RDX] = { "rdx", SP_T_HEX, U64, 0, NULL, 0 },
	/* RMPADJUST/PVALIDATE RCX page size: 0 = 4 KiB, 1 = 2 MiB. */
	[SP_K_SIZE] = { "size", SP_T_DEC, 1, 0, NULL, 0 },
	[SP_K_VALIDATE] = { "validate", SP_T_DEC, 1, 0, NULL, 0 },
	/* SW_EXITINFO1[15:0] request, [19:16] VMPL, [63:32] APIC ID (ap-creation.md A.2). */
	[SP_K_REQUEST] = { "request", SP_T_DEC, 0xffff, 0, NULL, 0 },
	[SP_K_APIC] = { "apic", SP_T_DEC, U32, 0, NULL, 0 },
	[SP_K_VMPL] = { "vmpl", SP_T_DEC, 0xf, 0, NULL, 0 },
	[SP_K_GPA] = { "gpa", SP_T_HEX, U64, 0, NULL, 0 },
	[SP_K_EXIT_CODE] = { "exit_code", SP_T_HEX, U64, 0, NULL, 0 },
	[SP_K_INFO1] = { "info1", SP_T_HEX, U64, 0, NULL, 0 },
	[SP_K_INFO2] = { "info2", SP_T_HEX, U64, 0, NULL, 0 },
	[SP_K_RAX] = { "rax", SP_T_HEX, U64, 0, NULL, 0 },
	[SP_K_VALID] = { "valid", SP_T_LIST, 0, 0, sp_valid_names, 4 },
	[SP_K_CPU] = { "cpu", SP_T_DEC, U32, 0, NULL, 0 },
	/* SIPI vector: 8 bits ([APM] vol. 2 16.5). */
	[SP_K_VECTOR] = { "vector", SP_T_HEX, 0xff, 0, NULL, 0 },
	/* PROTOCOL.md: timeout_ms <= 10000. */
	[SP_K_TIMEOUT_MS] = { "timeout_ms", SP_T_DEC, 10000, 0, NULL, 0 },
	[SP_K_VCPU] = { "vcpu", SP_T_DEC, U32, 0, NULL, 0 },
	/* struct kvm_mp_state.mp_state is a __u32 ([LX] include/uapi/linux/kvm.h). */
	[SP_K_STATE] = { "state", SP_T_DEC, U32, 0, NULL, 0 },
};

#define K(k) BIT32(SP_K_##k)

static const struct sp_verb_desc sp_verbs[SP_V_COUNT] = {
	[SP_V_HELLO] = { "hello", 0, 0 },
	[SP_V_HV_FEATURES] = { "hv-features", 0, 0 },
	[SP_V_SEV_INFO] = { "sev-info", 0, 0 },
	[SP_V_VMSA_ALLOC] = { "vmsa-alloc", K(H) | K(PLACEMENT) | K(MEMORY), 0 },
	[SP_V_VMSA_INIT] = { "vmsa-init", K(H) | K(TEMPLATE) | K(STUB), 0 },
	[SP_V_VMSA_SET] = { "vmsa-set", K(H) | K(FIELD) | K(VALUE), 0 },
	[SP_V_VMSA_POKE] = { "vmsa-poke", K(H) | K(OFFSET) | K(WIDTH) | K(VALUE), 0 },
	[SP_V_RMPADJUST] = { "rmpadjust", K(H) | K(RDX) | K(SIZE), 0 },
	[SP_V_PVALIDATE] = { "pvalidate", K(H) | K(VALIDATE) | K(SIZE), 0 },
	[SP_V_AP_CREATION] = { "ap-creation", K(REQUEST) | K(APIC) | K(VMPL),
			       K(H) | K(GPA) | K(EXIT_CODE) | K(INFO1) | K(INFO2) | K(RAX) | K(VALID) },
	[SP_V_CPU_OFFLINE] = { "cpu-offline", K(CPU), 0 },
	[SP_V_CPU_ONLINE] = { "cpu-online", K(CPU), 0 },
	[SP_V_INIT_SIPI] = { "init-sipi", K(APIC) | K(VECTOR), 0 },
	[SP_V_PV_KICK] = { "pv-kick", K(APIC), 0 },
	[SP_V_WAIT_MARKER] = { "wait-marker", K(H) | K(TIMEOUT_MS), 0 },
	[SP_V_VMSA_FREE] = { "vmsa-free", K(H), 0 },
	[SP_V_HOST_SET_MP_STATE] = { "host-set-mp-state", K(VCPU) | K(STATE), 0 },
};

static const char *const sp_reasons[SP_R_COUNT] = {
	[SP_R_OK] = "ok",
	[SP_R_EMPTY_LINE] = "empty-line",
	[SP_R_TOO_LONG] = "too-long",
	[SP_R_BAD_BYTE] = "bad-byte",
	[SP_R_UNTERMINATED] = "unterminated",
	[SP_R_BAD_SPACING] = "bad-spacing",
	[SP_R_BAD_SEQ] = "bad-seq",
	[SP_R_SEQ_ORDER] = "seq-order",
	[SP_R_UNKNOWN_VERB] = "unknown-verb",
	[SP_R_BAD_PAIR] = "bad-pair",
	[SP_R_DUPLICATE_KEY] = "duplicate-key",
	[SP_R_UNKNOWN_KEY] = "unknown-key",
	[SP_R_BAD_VALUE] = "bad-value",
	[SP_R_OUT_OF_RANGE] = "out-of-range",
	[SP_R_MISSING_KEY] = "missing-key",
	[SP_R_CONFLICT] = "conflict",
};

const char *sp_verb_name(enum sp_verb verb)
{
	return verb < SP_V_COUNT ? sp_verbs[verb].name : "?";
}

const char *sp_key_name(enum sp_key key)
{
	return key < SP_K_COUNT ? sp_keys[key].name : "?";
}

const char *sp_reason_name(enum sp_reason reason)
{
	return reason < SP_R_COUNT ? sp_reasons[reason] : "?";
}

/* ---- lexical level ---- */

static int sp_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int sp_is_lower_hex(char c)
{
	return sp_is_digit(c) || (c >= 'a' && c <= 'f');
}

static int sp_streq(const char *s, size_t len, const char *word)
{
	return strlen(word) == len && memcmp(s, word, len) == 0;
}

/* Canonical decimal: 0 | [1-9][0-9]*. Returns 0 ok, 1 bad shape, 2 too large for u64. */
static int sp_dec(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || (len > 1 && s[0] == '0'))
		return 1;
	for (i = 0; i < len; i++) {
		if (!sp_is_digit(s[i]))
			return 1;
	}
	for (i = 0; i < len; i++) {
		unsigned int d = (unsigned int)(s[i] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return 2;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* Canonical hex: 0x0 | 0x[1-9a-f][0-9a-f]*. Returns 0 ok, 1 bad shape, 2 more than 64 bits. */
static int sp_hex(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len < 3 || s[0] != '0' || s[1] != 'x' || (len > 3 && s[2] == '0'))
		return 1;
	for (i = 2; i < len; i++) {
		if (!sp_is_lower_hex(s[i]))
			return 1;
	}
	if (len - 2 > 16)
		return 2;
	for (i = 2; i < len; i++)
		v = v << 4 | (uint64_t)(sp_is_digit(s[i]) ? s[i] - '0' : s[i] - 'a' + 10);
	*out = v;
	return 0;
}

/* The seq at the start of a line, if its first token is one. */
static int sp_leading_seq(const char *line, size_t len, uint32_t *seq)
{
	const char *space = memchr(line, ' ', len);
	size_t n = space ? (size_t)(space - line) : len;
	uint64_t v;

	if (sp_dec(line, n, &v) || v > SP_SEQ_MAX)
		return 0;
	*seq = (uint32_t)v;
	return 1;
}

static enum sp_reason sp_value(const struct sp_key_desc *d, const char *s, size_t len, uint64_t *out)
{
	unsigned int i;
	int rc;

	switch (d->type) {
	case SP_T_DEC:
	case SP_T_HEX:
		rc = d->type == SP_T_DEC ? sp_dec(s, len, out) : sp_hex(s, len, out);
		if (rc == 1)
			return SP_R_BAD_VALUE;
		if (rc == 2 || *out > d->max)
			return SP_R_OUT_OF_RANGE;
		if (d->oneof && !(d->oneof & BIT32(*out)))
			return SP_R_OUT_OF_RANGE;
		return SP_R_OK;
	case SP_T_ENUM:
		for (i = 0; i < d->n_names; i++) {
			if (sp_streq(s, len, d->names[i])) {
				*out = i;
				return SP_R_OK;
			}
		}
		return SP_R_BAD_VALUE;
	case SP_T_LIST:
		*out = 0;
		if (sp_streq(s, len, "none"))
			return SP_R_OK;
		while (len) {
			const char *comma = memchr(s, ',', len);
			size_t n = comma ? (size_t)(comma - s) : len;

			for (i = 0; i < d->n_names; i++) {
				if (sp_streq(s, n, d->names[i]))
					break;
			}
			/* Unknown, empty or repeated item. */
			if (i == d->n_names || (*out & BIT32(i)))
				return SP_R_BAD_VALUE;
			*out |= BIT32(i);
			if (!comma)
				return SP_R_OK;
			if (n + 1 == len)
				return SP_R_BAD_VALUE;	/* trailing comma */
			s += n + 1;
			len -= n + 1;
		}
		return SP_R_BAD_VALUE;
	}
	return SP_R_BAD_VALUE;
}

/* Keys match [a-z][a-z0-9_]* (the TypeScript codec's KEY_RE). */
static int sp_key_shape(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || !(s[0] >= 'a' && s[0] <= 'z'))
		return 0;
	for (i = 1; i < len; i++) {
		if (!((s[i] >= 'a' && s[i] <= 'z') || sp_is_digit(s[i]) || s[i] == '_'))
			return 0;
	}
	return 1;
}

static int sp_fits(uint64_t value, unsigned int width)
{
	return width >= 8 || !(value >> (8 * width));
}

/* Rules between keys that each passed on their own. */
static enum sp_reason sp_cross_check(const struct sp_request *r, int *key)
{
	switch (r->verb) {
	case SP_V_VMSA_POKE:
		if (r->v[SP_K_OFFSET] + r->v[SP_K_WIDTH] > 0x1000) {
			*key = SP_K_OFFSET;
			return SP_R_CONFLICT;
		}
		if (!sp_fits(r->v[SP_K_VALUE], (unsigned int)r->v[SP_K_WIDTH])) {
			*key = SP_K_VALUE;
			return SP_R_CONFLICT;
		}
		return SP_R_OK;
	case SP_V_VMSA_SET:
		if (!sp_fits(r->v[SP_K_VALUE], sp_field_width[r->v[SP_K_FIELD]])) {
			*key = SP_K_VALUE;
			return SP_R_CONFLICT;
		}
		return SP_R_OK;
	case SP_V_AP_CREATION:
		/* Exactly one of h= (SW_EXITINFO2 = that page's GPA) and gpa=. */
		if (sp_has(r, SP_K_H) == sp_has(r, SP_K_GPA)) {
			*key = SP_K_H;
			return SP_R_CONFLICT;
		}
		return SP_R_OK;
	default:
		return SP_R_OK;
	}
}

static void sp_note_seq(struct sp_session *session, uint32_t seq)
{
	if (!session->have_seq || seq > session->last_seq) {
		session->have_seq = 1;
		session->last_seq = seq;
	}
}

static int sp_fail(struct sp_session *session, struct sp_error *err, enum sp_reason reason, int key)
{
	err->reason = reason;
	err->key = key;
	if (err->has_seq)
		sp_note_seq(session, err->seq);
	return -1;
}

int sp_parse_request(struct sp_session *session, const char *line, size_t len,
		     enum sp_framing framing, struct sp_request *req, struct sp_error *err)
{
	const struct sp_verb_desc *verb;
	const char *p, *end, *tok, *eq;
	enum sp_reason reason;
	unsigned int v;
	uint32_t allowed, missing;
	uint64_t seq;
	size_t i, n;
	int k, key = -1;

	memset(req, 0, sizeof(*req));
	err->reason = SP_R_OK;
	err->has_seq = 0;
	err->seq = 0;
	err->key = -1;

	/* Framing: bytes, length, termination, spacing (in that order, as the TypeScript codec). */
	for (i = 0; i < len; i++) {
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			break;
	}
	if (i < len) {
		const char *space = memchr(line, ' ', i);

		if (space)
			err->has_seq = sp_leading_seq(line, i, &err->seq);
		return sp_fail(session, err, SP_R_BAD_BYTE, -1);
	}
	err->has_seq = sp_leading_seq(line, len, &err->seq);
	if (framing == SP_LINE_TOO_LONG)
		return sp_fail(session, err, SP_R_TOO_LONG, -1);
	if (len == 0)
		return sp_fail(session, err, SP_R_EMPTY_LINE, -1);
	if (framing == SP_LINE_UNTERMINATED)
		return sp_fail(session, err, SP_R_UNTERMINATED, -1);
	for (i = 1; i < len && !(line[i] == ' ' && line[i - 1] == ' '); i++)
		;
	if (line[0] == ' ' || line[len - 1] == ' ' || i < len)
		return sp_fail(session, err, SP_R_BAD_SPACING, -1);

	/* seq: readable, then strictly increasing within the batch. */
	end = line + len;
	p = memchr(line, ' ', len);
	n = p ? (size_t)(p - line) : len;
	if (sp_dec(line, n, &seq) || seq > SP_SEQ_MAX) {
		err->has_seq = 0;
		return sp_fail(session, err, SP_R_BAD_SEQ, -1);
	}
	req->seq = (uint32_t)seq;
	if (session->have_seq && req->seq <= session->last_seq)
		return sp_fail(session, err, SP_R_SEQ_ORDER, -1);
	sp_note_seq(session, req->seq);

	/* verb */
	if (!p)
		return sp_fail(session, err, SP_R_UNKNOWN_VERB, -1);
	tok = p + 1;
	p = memchr(tok, ' ', (size_t)(end - tok));
	n = p ? (size_t)(p - tok) : (size_t)(end - tok);
	for (v = 0; v < SP_V_COUNT; v++) {
		if (sp_streq(tok, n, sp_verbs[v].name))
			break;
	}
	if (v == SP_V_COUNT)
		return sp_fail(session, err, SP_R_UNKNOWN_VERB, -1);
	req->verb = (enum sp_verb)v;
	verb = &sp_verbs[v];
	allowed = verb->required | verb->optional;

	/* key=value pairs */
	while (p) {
		tok = p + 1;
		p = memchr(tok, ' ', (size_t)(end - tok));
		n = p ? (size_t)(p - tok) : (size_t)(end - tok);
		eq = memchr(tok, '=', n);
		if (!eq || !sp_key_shape(tok, (size_t)(eq - tok)) || eq == tok + n - 1)
			return sp_fail(session, err, SP_R_BAD_PAIR, -1);
		for (k = 0; k < SP_K_COUNT; k++) {
			if (sp_streq(tok, (size_t)(eq - tok), sp_keys[k].name))
				break;
		}
		if (k < SP_K_COUNT && sp_has(req, (enum sp_key)k))
			return sp_fail(session, err, SP_R_DUPLICATE_KEY, k);
		if (k == SP_K_COUNT || !(allowed & BIT32(k)))
			return sp_fail(session, err, SP_R_UNKNOWN_KEY, k == SP_K_COUNT ? -1 : k);
		reason = sp_value(&sp_keys[k], eq + 1, (size_t)(tok + n - eq - 1), &req->v[k]);
		if (reason != SP_R_OK)
			return sp_fail(session, err, reason, k);
		req->present |= BIT32(k);
	}

	missing = verb->required & ~req->present;
	if (missing) {
		for (k = 0; !(missing & BIT32(k)); k++)
			;
		return sp_fail(session, err, SP_R_MISSING_KEY, k);
	}
	reason = sp_cross_check(req, &key);
	if (reason != SP_R_OK)
		return sp_fail(session, err, reason, key);
	err->has_seq = 1;
	err->seq = req->seq;
	return 0;
}

/* ---- encoding ---- */

static void sp_out_append(struct sp_out *out, const char *text, size_t n)
{
	/* Keep one byte for the \n: a line is at most SP_MAX_LINE bytes with it. */
	if (out->overflow || out->len + n > SP_MAX_LINE - 1) {
		out->overflow = 1;
		return;
	}
	memcpy(out->buf + out->len, text, n);
	out->len += n;
	out->buf[out->len] = '\0';
}

void sp_out_raw(struct sp_out *out, const char *text)
{
	sp_out_append(out, text, strlen(text));
}

static void sp_out_key(struct sp_out *out, const char *key)
{
	sp_out_raw(out, " ");
	sp_out_raw(out, key);
	sp_out_raw(out, "=");
}

void sp_out_ok(struct sp_out *out, uint32_t seq)
{
	char num[16];

	out->len = 0;
	out->overflow = 0;
	out->buf[0] = '\0';
	snprintf(num, sizeof(num), "%u", seq);
	sp_out_raw(out, num);
	sp_out_raw(out, " ok");
}

void sp_out_err(struct sp_out *out, uint32_t seq, const char *code)
{
	char num[16];

	out->len = 0;
	out->overflow = 0;
	out->buf[0] = '\0';
	snprintf(num, sizeof(num), "%u", seq);
	sp_out_raw(out, num);
	sp_out_raw(out, " err");
	sp_out_token(out, "code", code, 0);
}

void sp_out_dec(struct sp_out *out, const char *key, uint64_t value)
{
	char num[24];

	snprintf(num, sizeof(num), "%llu", (unsigned long long)value);
	sp_out_key(out, key);
	sp_out_raw(out, num);
}

void sp_out_sdec(struct sp_out *out, const char *key, int64_t value)
{
	char num[24];

	snprintf(num, sizeof(num), "%lld", (long long)value);
	sp_out_key(out, key);
	sp_out_raw(out, num);
}

void sp_out_hex(struct sp_out *out, const char *key, uint64_t value)
{
	char num[24];

	snprintf(num, sizeof(num), "0x%llx", (unsigned long long)value);
	sp_out_key(out, key);
	sp_out_raw(out, num);
}

static int sp_token_char(char c, int first, int release)
{
	if ((c >= 'a' && c <= 'z') || sp_is_digit(c))
		return 1;
	if (release && c >= 'A' && c <= 'Z')
		return 1;
	if (first)
		return 0;
	return c == '_' || c == '.' || c == ':' || c == '-' || (release && (c == '+' || c == '~'));
}

void sp_out_token(struct sp_out *out, const char *key, const char *value, int release)
{
	char buf[SP_MAX_LINE];
	size_t i, n = strlen(value);

	if (n == 0 || n >= sizeof(buf)) {
		out->overflow |= n != 0;
		value = "none";
		n = 4;
	}
	for (i = 0; i < n; i++)
		buf[i] = sp_token_char(value[i], i == 0, release) ? value[i] : (i == 0 ? 'x' : '_');
	buf[n] = '\0';
	sp_out_key(out, key);
	sp_out_raw(out, buf);
}

size_t sp_out_end(struct sp_out *out)
{
	if (out->overflow)
		return 0;
	out->buf[out->len++] = '\n';
	out->buf[out->len] = '\0';
	return out->len;
}

void sp_out_bad_request(struct sp_out *out, const struct sp_error *err)
{
	sp_out_err(out, err->has_seq ? err->seq : 0, "bad-request");
	sp_out_token(out, "reason", sp_reason_name(err->reason), 0);
	if (err->key >= 0 && err->key < SP_K_COUNT)
		sp_out_token(out, "key", sp_key_name((enum sp_key)err->key), 0);
}

/* ---- kABI mapping ---- */

/*
 * Verbs that map straight onto a module operation: the op and the request keys that fill arg[0..],
 * in order (SP_K_COUNT ends a list). hello, the CPU hotplug verbs and host-set-mp-state never reach
 * the module; ap-creation builds its arguments below.
 */
struct sp_kreq_map {
	int op;
	int keys[4];
};

#define END SP_K_COUNT
static const struct sp_kreq_map sp_kreq_maps[SP_V_COUNT] = {
	[SP_V_HELLO] = { -1, { END } },
	[SP_V_HV_FEATURES] = { SNPSIM_OP_HV_FEATURES, { END } },
	[SP_V_SEV_INFO] = { SNPSIM_OP_SEV_INFO, { END } },
	[SP_V_VMSA_ALLOC] = { SNPSIM_OP_VMSA_ALLOC, { SP_K_H, SP_K_PLACEMENT, SP_K_MEMORY, END } },
	[SP_V_VMSA_INIT] = { SNPSIM_OP_VMSA_INIT, { SP_K_H, SP_K_TEMPLATE, SP_K_STUB, END } },
	[SP_V_VMSA_SET] = { SNPSIM_OP_VMSA_SET, { SP_K_H, SP_K_FIELD, SP_K_VALUE, END } },
	[SP_V_VMSA_POKE] = { SNPSIM_OP_VMSA_POKE, { SP_K_H, SP_K_OFFSET, SP_K_WIDTH, SP_K_VALUE } },
	[SP_V_RMPADJUST] = { SNPSIM_OP_RMPADJUST, { SP_K_H, SP_K_RDX, SP_K_SIZE, END } },
	[SP_V_PVALIDATE] = { SNPSIM_OP_PVALIDATE, { SP_K_H, SP_K_VALIDATE, SP_K_SIZE, END } },
	[SP_V_AP_CREATION] = { SNPSIM_OP_AP_CREATION, { END } },
	[SP_V_CPU_OFFLINE] = { -1, { END } },
	[SP_V_CPU_ONLINE] = { -1, { END } },
	[SP_V_INIT_SIPI] = { SNPSIM_OP_INIT_SIPI, { SP_K_APIC, SP_K_VECTOR, END } },
	[SP_V_PV_KICK] = { SNPSIM_OP_PV_KICK, { SP_K_APIC, END } },
	[SP_V_WAIT_MARKER] = { SNPSIM_OP_WAIT_MARKER, { SP_K_H, SP_K_TIMEOUT_MS, END } },
	[SP_V_VMSA_FREE] = { SNPSIM_OP_VMSA_FREE, { SP_K_H, END } },
	[SP_V_HOST_SET_MP_STATE] = { -1, { END } },
};
#undef END

/* ap-creation: SW_EXITCODE, SW_EXITINFO1/2, RAX and the valid bits, with the module-side defaults. */
static void sp_ap_creation_args(const struct sp_request *r, __u64 *a)
{
	const uint64_t *v = r->v;

	/* [0] SW_EXITCODE: SVM_VMGEXIT_AP_CREATION unless overridden. */
	a[0] = sp_has(r, SP_K_EXIT_CODE) ? v[SP_K_EXIT_CODE] : SP_AP_CREATION_EXIT_CODE;
	/* [1] SW_EXITINFO1 = APIC ID << 32 | VMPL << 16 | request, as Linux builds it. */
	a[1] = sp_has(r, SP_K_INFO1) ? v[SP_K_INFO1] :
	       v[SP_K_APIC] << 32 | v[SP_K_VMPL] << 16 | v[SP_K_REQUEST];
	/* [2] SW_EXITINFO2: override, else gpa=, else the handle's GPA (module side). */
	if (sp_has(r, SP_K_INFO2))
		a[2] = v[SP_K_INFO2];
	else if (sp_has(r, SP_K_GPA))
		a[2] = v[SP_K_GPA];
	else
		a[5] |= SNPSIM_APC_INFO2_FROM_H;
	/* [3] RAX: override, else the handle's VMSA SEV_FEATURES, else 0. */
	if (sp_has(r, SP_K_RAX))
		a[3] = v[SP_K_RAX];
	else if (sp_has(r, SP_K_H))
		a[5] |= SNPSIM_APC_RAX_FROM_H;
	/* [4] valid bits: all four, but RAX not for DESTROY (PROTOCOL.md). */
	if (sp_has(r, SP_K_VALID))
		a[4] = v[SP_K_VALID];
	else
		a[4] = v[SP_K_REQUEST] == SP_AP_DESTROY ? SNPSIM_VALID_ALL & ~SNPSIM_VALID_RAX :
			SNPSIM_VALID_ALL;
	a[6] = v[SP_K_H];
}

int sp_to_kreq(const struct sp_request *r, struct snpsim_kreq *k)
{
	const struct sp_kreq_map *map;
	unsigned int i;

	memset(k, 0, sizeof(*k));
	k->abi = SNPSIM_KABI_VERSION;
	if ((unsigned int)r->verb >= SP_V_COUNT)
		return -1;
	map = &sp_kreq_maps[r->verb];
	if (map->op < 0)
		return -1;
	k->op = (__u32)map->op;
	if (r->verb == SP_V_AP_CREATION) {
		sp_ap_creation_args(r, k->arg);
		return 0;
	}
	for (i = 0; i < 4 && map->keys[i] != SP_K_COUNT; i++)
		k->arg[i] = r->v[map->keys[i]];
	return 0;
}

static const char *const sp_module_reasons[] = {
	[SNPSIM_R_NONE] = NULL,
	[SNPSIM_R_ABI] = "abi",
	[SNPSIM_R_ARG] = "bad-argument",
	[SNPSIM_R_NMI] = "nmi-in-window",
	[SNPSIM_R_GHCB] = "ghcb-unknown",
	[SNPSIM_R_AP_MAY_RUN] = "ap-may-run",
	[SNPSIM_R_UNVALIDATED] = "unvalidated",
	[SNPSIM_R_NEEDS_2M] = "needs-2m-aligned",
	[SNPSIM_R_NO_STUB] = "no-stub",
	[SNPSIM_R_KEPT] = "page-kept",
	[SNPSIM_R_NOT_KVM] = "not-kvm",
};

static void sp_from_kresp_err(const struct sp_request *r, const struct snpsim_kresp *k, struct sp_out *out)
{
	static const char *const codes[] = {
		[SNPSIM_ST_BAD_REQUEST] = "bad-request",
		[SNPSIM_ST_BAD_HANDLE] = "bad-handle",
		[SNPSIM_ST_BUSY] = "busy",
		[SNPSIM_ST_UNSUPPORTED] = "unsupported",
		[SNPSIM_ST_FAILED] = "failed",
		[SNPSIM_ST_NOT_SNP] = "not-snp",
	};
	size_t n_reasons = sizeof(sp_module_reasons) / sizeof(sp_module_reasons[0]);

	if (k->status >= sizeof(codes) / sizeof(codes[0])) {
		/* A newer module: say so instead of guessing. */
		sp_out_err(out, r->seq, "failed");
		sp_out_dec(out, "errno", 71);	/* EPROTO */
		sp_out_token(out, "reason", "unknown-module-status", 0);
		return;
	}
	sp_out_err(out, r->seq, codes[k->status]);
	if (k->status == SNPSIM_ST_FAILED && k->err >= 1 && k->err <= SP_ERRNO_MAX)
		sp_out_dec(out, "errno", (uint64_t)k->err);
	if (k->reason != SNPSIM_R_NONE)
		sp_out_token(out, "reason",
			     k->reason < n_reasons && sp_module_reasons[k->reason] ?
			     sp_module_reasons[k->reason] : "unknown-module-reason", 0);
}

void sp_from_kresp(const struct sp_request *r, const struct snpsim_kresp *k, struct sp_out *out)
{
	const __u64 *val = k->val;

	if (k->status != SNPSIM_ST_OK) {
		sp_from_kresp_err(r, k, out);
		return;
	}
	sp_out_ok(out, r->seq);
	switch (r->verb) {
	case SP_V_HV_FEATURES:
		sp_out_hex(out, "msr", val[0]);
		sp_out_hex(out, "features", val[1]);
		break;
	case SP_V_SEV_INFO:
		sp_out_hex(out, "msr", val[0]);
		sp_out_dec(out, "max", val[1]);
		sp_out_dec(out, "min", val[2]);
		sp_out_dec(out, "cbit", val[3]);
		break;
	case SP_V_VMSA_ALLOC:
		sp_out_hex(out, "gpa", val[0]);
		break;
	case SP_V_VMSA_INIT:
		sp_out_hex(out, "sev_features", val[0]);
		break;
	case SP_V_RMPADJUST:
		sp_out_dec(out, "eax", (uint32_t)val[0]);
		break;
	case SP_V_PVALIDATE:
		sp_out_dec(out, "eax", (uint32_t)val[0]);
		sp_out_dec(out, "cf", val[1] ? 1 : 0);
		break;
	case SP_V_AP_CREATION:
		sp_out_hex(out, "sw_exit_info1", val[0]);
		sp_out_hex(out, "sw_exit_info2", val[1]);
		break;
	case SP_V_PV_KICK:
		sp_out_sdec(out, "ret", (int64_t)val[0]);
		break;
	case SP_V_WAIT_MARKER:
		sp_out_dec(out, "ran", val[0] ? 1 : 0);
		break;
	case SP_V_VMSA_FREE:
		sp_out_dec(out, "eax", (uint32_t)val[0]);
		sp_out_dec(out, "freed", val[1] ? 1 : 0);
		break;
	default:
		break;
	}
}

void sp_module_version(uint64_t packed, char *buf, size_t size)
{
	snprintf(buf, size, "%u.%u.%u", (unsigned int)(packed >> 16) & 0xff,
		 (unsigned int)(packed >> 8) & 0xff, (unsigned int)packed & 0xff);
}
