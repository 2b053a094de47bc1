/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The agent protocol v1 (PROTOCOL.md), pure C: strict request parsing, response encoding, and the
 * mapping of requests and module responses to the module's kABI (../kmod/snpsim_kabi.h).
 * No I/O and no global state, so a host-side test program can drive every path.
 */
#ifndef SNPSIM_PROTO_H
#define SNPSIM_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "../kmod/snpsim_kabi.h"

#define SP_PROTOCOL_VERSION 1
#define SP_AGENT_VERSION "0.1.0"
/* PROTOCOL.md: a line is at most 1024 bytes; counted with its terminating \n. */
#define SP_MAX_LINE 1024
/* The largest seq (the TypeScript codec's SEQ_MAX, 2^32 - 1). */
#define SP_SEQ_MAX 0xffffffffULL
/* Linux errno values are 1..4095 ([LX] include/linux/err.h MAX_ERRNO). */
#define SP_ERRNO_MAX 4095
/* SVM_VMGEXIT_AP_CREATION and its DESTROY request ([LX] arch/x86/include/uapi/asm/svm.h). */
#define SP_AP_CREATION_EXIT_CODE 0x80000013ULL
#define SP_AP_DESTROY 2

enum sp_verb {
	SP_V_HELLO,
	SP_V_HV_FEATURES,
	SP_V_SEV_INFO,
	SP_V_VMSA_ALLOC,
	SP_V_VMSA_INIT,
	SP_V_VMSA_SET,
	SP_V_VMSA_POKE,
	SP_V_RMPADJUST,
	SP_V_PVALIDATE,
	SP_V_AP_CREATION,
	SP_V_CPU_OFFLINE,
	SP_V_CPU_ONLINE,
	SP_V_INIT_SIPI,
	SP_V_PV_KICK,
	SP_V_WAIT_MARKER,
	SP_V_VMSA_FREE,
	SP_V_HOST_SET_MP_STATE,
	SP_V_COUNT
};

enum sp_key {
	SP_K_H,
	SP_K_PLACEMENT,
	SP_K_MEMORY,
	SP_K_TEMPLATE,
	SP_K_STUB,
	SP_K_FIELD,
	SP_K_VALUE,
	SP_K_OFFSET,
	SP_K_WIDTH,
	SP_K_RDX,
	SP_K_SIZE,
	SP_K_VALIDATE,
	SP_K_REQUEST,
	SP_K_APIC,
	SP_K_VMPL,
	SP_K_GPA,
	SP_K_EXIT_CODE,
	SP_K_INFO1,
	SP_K_INFO2,
	SP_K_RAX,
	SP_K_VALID,
	SP_K_CPU,
	SP_K_VECTOR,
	SP_K_TIMEOUT_MS,
	SP_K_VCPU,
	SP_K_STATE,
	SP_K_COUNT
};

/* Why a line is a bad request: written as reason=<token> (the TypeScript codec's names). */
enum sp_reason {
	SP_R_OK,
	SP_R_EMPTY_LINE,
	SP_R_TOO_LONG,
	SP_R_BAD_BYTE,
	SP_R_UNTERMINATED,
	SP_R_BAD_SPACING,
	SP_R_BAD_SEQ,
	SP_R_SEQ_ORDER,
	SP_R_UNKNOWN_VERB,
	SP_R_BAD_PAIR,
	SP_R_DUPLICATE_KEY,
	SP_R_UNKNOWN_KEY,
	SP_R_BAD_VALUE,
	SP_R_OUT_OF_RANGE,
	SP_R_MISSING_KEY,
	SP_R_CONFLICT,
	SP_R_COUNT
};

struct sp_request {
	uint32_t seq;
	enum sp_verb verb;
	uint32_t present;		/* bit k: key k was given */
	uint64_t v[SP_K_COUNT];		/* number, enum index, or SNPSIM_VALID_* mask */
};

/* What is wrong with a line: the reason, the seq to echo, and the key concerned (or -1). */
struct sp_error {
	enum sp_reason reason;
	int has_seq;
	uint32_t seq;
	int key;
};

/* Per-batch state: seqs must strictly increase. */
struct sp_session {
	int have_seq;
	uint32_t last_seq;
};

/* How the line ended: normally, too long (only a prefix is given), or at EOF without \n. */
enum sp_framing {
	SP_LINE,
	SP_LINE_TOO_LONG,
	SP_LINE_UNTERMINATED,
};

/*
 * Parses one request line (@len bytes, without its \n). Returns 0 and fills @req, or -1 and fills
 * @err. Updates @session's last seq whenever the line carries a readable, increasing seq.
 */
int sp_parse_request(struct sp_session *session, const char *line, size_t len,
		     enum sp_framing framing, struct sp_request *req, struct sp_error *err);

static inline int sp_has(const struct sp_request *req, enum sp_key key)
{
	return (req->present >> key) & 1;
}

const char *sp_verb_name(enum sp_verb verb);
const char *sp_key_name(enum sp_key key);
const char *sp_reason_name(enum sp_reason reason);

/* ---- response encoding ---- */

struct sp_out {
	char buf[SP_MAX_LINE + 1];
	size_t len;
	int overflow;
};

void sp_out_ok(struct sp_out *out, uint32_t seq);
void sp_out_err(struct sp_out *out, uint32_t seq, const char *code);
void sp_out_raw(struct sp_out *out, const char *text);
void sp_out_dec(struct sp_out *out, const char *key, uint64_t value);
void sp_out_sdec(struct sp_out *out, const char *key, int64_t value);
void sp_out_hex(struct sp_out *out, const char *key, uint64_t value);
/* A token value; bytes outside the token grammar become '_' (release: also A-Z + ~ kept). */
void sp_out_token(struct sp_out *out, const char *key, const char *value, int release);
/* Terminates the line with \n; returns its length, or 0 if it did not fit in SP_MAX_LINE. */
size_t sp_out_end(struct sp_out *out);

/* The bad-request answer for @err: "<seq|0> err code=bad-request reason=<r> [key=<k>]". */
void sp_out_bad_request(struct sp_out *out, const struct sp_error *err);

/* ---- kABI mapping ---- */

/*
 * Fills the module request for a verb served by one module operation, applying the protocol's
 * defaults (ap-creation: exit code, SW_EXITINFO1 layout, RAX and the valid list). Returns -1 for
 * verbs the agent serves itself (hello, cpu-offline, cpu-online, host-set-mp-state).
 */
int sp_to_kreq(const struct sp_request *req, struct snpsim_kreq *kreq);

/* Writes the response line for @req from the module's answer @kresp. */
void sp_from_kresp(const struct sp_request *req, const struct snpsim_kresp *kresp, struct sp_out *out);

/* Module version "maj.min.patch" from SNPSIM_OP_INFO val[1]. */
void sp_module_version(uint64_t packed, char *buf, size_t size);

#endif /* SNPSIM_PROTO_H */
