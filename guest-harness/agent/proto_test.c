// SPDX-License-Identifier: GPL-2.0-only
/*
 * Host-side unit tests of snpsim_proto.c: valid requests and every class of malformed line,
 * response encoding, and the mapping to and from the module kABI. Prints TAP; exit status 0
 * only if every check passed.
 */
#include "snpsim_proto.h"

#include <stdio.h>
#include <string.h>

static int checks, failures;

static void check(int cond, const char *what, const char *detail)
{
	checks++;
	if (cond) {
		printf("ok %d - %s\n", checks, what);
		return;
	}
	failures++;
	printf("not ok %d - %s%s%s\n", checks, what, detail ? ": " : "", detail ? detail : "");
}

/* Parses @line in a fresh session. */
static int parse(const char *line, struct sp_request *req, struct sp_error *err)
{
	struct sp_session session = { 0, 0 };

	return sp_parse_request(&session, line, strlen(line), SP_LINE, req, err);
}

static void expect_ok(const char *line)
{
	struct sp_request req;
	struct sp_error err;
	int rc = parse(line, &req, &err);

	check(rc == 0, line, rc ? sp_reason_name(err.reason) : NULL);
}

/* A malformed line: its reason, the seq it echoes (-1: none) and the key named (-1: none). */
static void expect_bad(const char *line, enum sp_reason reason, long seq, int key)
{
	struct sp_request req;
	struct sp_error err;
	char detail[160];
	int rc = parse(line, &req, &err);

	snprintf(detail, sizeof(detail), "rc %d reason %s has_seq %d seq %u key %d", rc,
		 sp_reason_name(err.reason), err.has_seq, err.seq, err.key);
	check(rc == -1 && err.reason == reason &&
	      (seq < 0 ? !err.has_seq : err.has_seq && err.seq == (uint32_t)seq) && err.key == key,
	      line, detail);
}

static void expect_line(struct sp_out *out, const char *want, const char *what)
{
	char detail[SP_MAX_LINE + 64];
	size_t n = sp_out_end(out);

	snprintf(detail, sizeof(detail), "got \"%s\"", out->buf);
	check(n == strlen(want) && strcmp(out->buf, want) == 0, what, detail);
}

static void test_valid(void)
{
	struct sp_request req;
	struct sp_error err;

	expect_ok("1 hello");
	expect_ok("0 hv-features");
	expect_ok("4294967295 sev-info");
	expect_ok("2 vmsa-alloc h=0 placement=split memory=private");
	expect_ok("2 vmsa-alloc memory=unvalidated h=63 placement=2m-aligned");
	expect_ok("3 vmsa-init h=1 template=ovmf stub=1");
	expect_ok("3 vmsa-set h=1 field=cs_base value=0xffffffffffffffff");
	expect_ok("3 vmsa-set h=1 field=vmpl value=0xff");
	expect_ok("3 vmsa-poke h=1 offset=0xff8 width=8 value=0x1");
	expect_ok("3 vmsa-poke h=1 offset=0x0 width=1 value=0xff");
	expect_ok("4 rmpadjust h=0 rdx=0x10001 size=0");
	expect_ok("4 pvalidate h=0 validate=0 size=1");
	expect_ok("5 ap-creation request=1 apic=3 vmpl=0 h=0");
	expect_ok("5 ap-creation request=65535 apic=4294967295 vmpl=15 gpa=0x0 valid=none");
	expect_ok("5 ap-creation request=0 apic=0 vmpl=0 gpa=0x1 exit_code=0x0 info1=0x0 info2=0x0 rax=0x0 valid=rax,info2,info1,exit_code");
	expect_ok("6 cpu-offline cpu=3");
	expect_ok("6 cpu-online cpu=4294967295");
	expect_ok("7 init-sipi apic=2 vector=0xff");
	expect_ok("7 pv-kick apic=2");
	expect_ok("8 wait-marker h=0 timeout_ms=10000");
	expect_ok("9 vmsa-free h=5");
	expect_ok("9 host-set-mp-state vcpu=1 state=5");

	parse("2 vmsa-alloc h=7 placement=2m-aligned memory=shared", &req, &err);
	check(req.seq == 2 && req.verb == SP_V_VMSA_ALLOC && req.v[SP_K_H] == 7 &&
	      req.v[SP_K_PLACEMENT] == SNPSIM_PLACE_2M && req.v[SP_K_MEMORY] == SNPSIM_MEM_SHARED,
	      "vmsa-alloc values map to kABI enums", NULL);
	parse("3 vmsa-set h=1 field=cs_base value=0x1234", &req, &err);
	check(req.v[SP_K_FIELD] == SNPSIM_F_CS_BASE && req.v[SP_K_VALUE] == 0x1234,
	      "vmsa-set field maps to SNPSIM_F_CS_BASE", NULL);
	parse("3 vmsa-set h=1 field=sev_features value=0x0", &req, &err);
	check(req.v[SP_K_FIELD] == SNPSIM_F_SEV_FEATURES, "vmsa-set sev_features is field 0", NULL);
	parse("3 vmsa-init h=1 template=zero stub=0", &req, &err);
	check(req.v[SP_K_TEMPLATE] == SNPSIM_TPL_ZERO, "template zero maps to SNPSIM_TPL_ZERO", NULL);
	parse("5 ap-creation request=1 apic=3 vmpl=0 h=0 valid=rax,exit_code", &req, &err);
	check(req.v[SP_K_VALID] == (SNPSIM_VALID_RAX | SNPSIM_VALID_EXIT_CODE),
	      "valid list is a bit mask in any order", NULL);
}

static void test_malformed(void)
{
	struct sp_session session = { 0, 0 };
	struct sp_request req;
	struct sp_error err;
	char line[2 * SP_MAX_LINE];
	int rc;

	/* Framing */
	expect_bad("", SP_R_EMPTY_LINE, -1, -1);
	expect_bad("8 hello\x01", SP_R_BAD_BYTE, 8, -1);
	expect_bad("8 hel\tlo", SP_R_BAD_BYTE, 8, -1);
	expect_bad("8\x7f hello", SP_R_BAD_BYTE, -1, -1);
	expect_bad("8 hello\r", SP_R_BAD_BYTE, 8, -1);
	expect_bad("8 vmsa-free h=\xc3\xa9", SP_R_BAD_BYTE, 8, -1);
	rc = sp_parse_request(&session, "8 hel\0lo", 8, SP_LINE, &req, &err);
	check(rc == -1 && err.reason == SP_R_BAD_BYTE && err.seq == 8, "NUL byte is a bad byte", NULL);
	memset(line, 'a', sizeof(line));
	memcpy(line, "9 hello ", 8);
	session.have_seq = 0;
	rc = sp_parse_request(&session, line, SP_MAX_LINE, SP_LINE_TOO_LONG, &req, &err);
	check(rc == -1 && err.reason == SP_R_TOO_LONG && err.has_seq && err.seq == 9,
	      "overlong line is too-long and echoes its seq", NULL);
	line[20] = '\x02';
	rc = sp_parse_request(&session, line, SP_MAX_LINE, SP_LINE_TOO_LONG, &req, &err);
	check(rc == -1 && err.reason == SP_R_BAD_BYTE, "a bad byte wins over too-long", NULL);
	session.have_seq = 0;
	rc = sp_parse_request(&session, "10 hello", 8, SP_LINE_UNTERMINATED, &req, &err);
	check(rc == -1 && err.reason == SP_R_UNTERMINATED && err.seq == 10,
	      "a last line without newline is unterminated", NULL);

	/* Tokens */
	expect_bad(" 1 hello", SP_R_BAD_SPACING, -1, -1);
	expect_bad("1 hello ", SP_R_BAD_SPACING, 1, -1);
	expect_bad("1  hello", SP_R_BAD_SPACING, 1, -1);
	expect_bad("1 vmsa-free  h=0", SP_R_BAD_SPACING, 1, -1);
	expect_bad("x hello", SP_R_BAD_SEQ, -1, -1);
	expect_bad("01 hello", SP_R_BAD_SEQ, -1, -1);
	expect_bad("-1 hello", SP_R_BAD_SEQ, -1, -1);
	expect_bad("0x1 hello", SP_R_BAD_SEQ, -1, -1);
	expect_bad("4294967296 hello", SP_R_BAD_SEQ, -1, -1);
	expect_bad("99999999999999999999999 hello", SP_R_BAD_SEQ, -1, -1);
	expect_bad("11", SP_R_UNKNOWN_VERB, 11, -1);
	expect_bad("11 frobnicate", SP_R_UNKNOWN_VERB, 11, -1);
	expect_bad("11 HELLO", SP_R_UNKNOWN_VERB, 11, -1);
	expect_bad("11 hello=1", SP_R_UNKNOWN_VERB, 11, -1);
	expect_bad("12 vmsa-free h", SP_R_BAD_PAIR, 12, -1);
	expect_bad("12 vmsa-free =1", SP_R_BAD_PAIR, 12, -1);
	expect_bad("12 vmsa-free h=", SP_R_BAD_PAIR, 12, -1);
	expect_bad("12 vmsa-free H=1", SP_R_BAD_PAIR, 12, -1);
	expect_bad("12 vmsa-free 1h=1", SP_R_BAD_PAIR, 12, -1);
	expect_bad("12 vmsa-free h-x=1", SP_R_BAD_PAIR, 12, -1);

	/* Unknown and missing keys */
	expect_bad("13 vmsa-free h=0 x=1", SP_R_UNKNOWN_KEY, 13, -1);
	expect_bad("13 hv-features h=0", SP_R_UNKNOWN_KEY, 13, SP_K_H);
	expect_bad("13 hello protocol=1", SP_R_UNKNOWN_KEY, 13, -1);
	expect_bad("13 cpu-offline cpu=1 apic=1", SP_R_UNKNOWN_KEY, 13, SP_K_APIC);
	expect_bad("14 vmsa-alloc h=0 placement=split", SP_R_MISSING_KEY, 14, SP_K_MEMORY);
	expect_bad("14 vmsa-free", SP_R_MISSING_KEY, 14, SP_K_H);
	expect_bad("14 ap-creation apic=1 vmpl=0 h=0", SP_R_MISSING_KEY, 14, SP_K_REQUEST);
	expect_bad("14 ap-creation request=1 apic=1 h=0", SP_R_MISSING_KEY, 14, SP_K_VMPL);

	/* Duplicate keys */
	expect_bad("15 vmsa-free h=0 h=1", SP_R_DUPLICATE_KEY, 15, SP_K_H);
	expect_bad("15 vmsa-free h=0 h=0", SP_R_DUPLICATE_KEY, 15, SP_K_H);

	/* Values of the wrong form */
	expect_bad("16 vmsa-free h=0x1", SP_R_BAD_VALUE, 16, SP_K_H);
	expect_bad("16 vmsa-free h=01", SP_R_BAD_VALUE, 16, SP_K_H);
	expect_bad("16 vmsa-free h=-1", SP_R_BAD_VALUE, 16, SP_K_H);
	expect_bad("16 vmsa-set h=0 field=rip value=10", SP_R_BAD_VALUE, 16, SP_K_VALUE);
	expect_bad("16 vmsa-set h=0 field=rip value=0X1", SP_R_BAD_VALUE, 16, SP_K_VALUE);
	expect_bad("16 vmsa-set h=0 field=rip value=0xA", SP_R_BAD_VALUE, 16, SP_K_VALUE);
	expect_bad("16 vmsa-set h=0 field=rip value=0x01", SP_R_BAD_VALUE, 16, SP_K_VALUE);
	expect_bad("16 vmsa-set h=0 field=rip value=0x", SP_R_BAD_VALUE, 16, SP_K_VALUE);
	expect_bad("16 vmsa-set h=0 field=rip value=0xg", SP_R_BAD_VALUE, 16, SP_K_VALUE);
	expect_bad("16 vmsa-set h=0 field=eip value=0x1", SP_R_BAD_VALUE, 16, SP_K_FIELD);
	expect_bad("16 vmsa-alloc h=0 placement=Split memory=private", SP_R_BAD_VALUE, 16, SP_K_PLACEMENT);
	expect_bad("16 vmsa-init h=0 template=linux stub=yes", SP_R_BAD_VALUE, 16, SP_K_STUB);
	expect_bad("16 ap-creation request=1 apic=1 vmpl=0 h=0 valid=rax,rax", SP_R_BAD_VALUE, 16, SP_K_VALID);
	expect_bad("16 ap-creation request=1 apic=1 vmpl=0 h=0 valid=rax,", SP_R_BAD_VALUE, 16, SP_K_VALID);
	expect_bad("16 ap-creation request=1 apic=1 vmpl=0 h=0 valid=,rax", SP_R_BAD_VALUE, 16, SP_K_VALID);
	expect_bad("16 ap-creation request=1 apic=1 vmpl=0 h=0 valid=rbx", SP_R_BAD_VALUE, 16, SP_K_VALID);
	expect_bad("16 ap-creation request=1 apic=1 vmpl=0 h=0 valid=none,rax", SP_R_BAD_VALUE, 16, SP_K_VALID);

	/* Values out of range */
	expect_bad("17 vmsa-free h=64", SP_R_OUT_OF_RANGE, 17, SP_K_H);
	expect_bad("17 wait-marker h=0 timeout_ms=10001", SP_R_OUT_OF_RANGE, 17, SP_K_TIMEOUT_MS);
	expect_bad("17 vmsa-poke h=0 offset=0x0 width=3 value=0x0", SP_R_OUT_OF_RANGE, 17, SP_K_WIDTH);
	expect_bad("17 vmsa-poke h=0 offset=0x0 width=16 value=0x0", SP_R_OUT_OF_RANGE, 17, SP_K_WIDTH);
	expect_bad("17 vmsa-poke h=0 offset=0x1000 width=1 value=0x0", SP_R_OUT_OF_RANGE, 17, SP_K_OFFSET);
	expect_bad("17 init-sipi apic=1 vector=0x100", SP_R_OUT_OF_RANGE, 17, SP_K_VECTOR);
	expect_bad("17 ap-creation request=1 apic=1 vmpl=16 h=0", SP_R_OUT_OF_RANGE, 17, SP_K_VMPL);
	expect_bad("17 ap-creation request=65536 apic=1 vmpl=0 h=0", SP_R_OUT_OF_RANGE, 17, SP_K_REQUEST);
	expect_bad("17 ap-creation request=1 apic=4294967296 vmpl=0 h=0", SP_R_OUT_OF_RANGE, 17, SP_K_APIC);
	expect_bad("17 rmpadjust h=0 rdx=0x10000000000000000 size=0", SP_R_OUT_OF_RANGE, 17, SP_K_RDX);
	expect_bad("17 rmpadjust h=0 rdx=0x1 size=2", SP_R_OUT_OF_RANGE, 17, SP_K_SIZE);
	expect_bad("17 pvalidate h=0 validate=2 size=0", SP_R_OUT_OF_RANGE, 17, SP_K_VALIDATE);
	expect_bad("17 cpu-offline cpu=99999999999999999999999", SP_R_OUT_OF_RANGE, 17, SP_K_CPU);

	/* Rules between keys */
	expect_bad("18 vmsa-poke h=0 offset=0xffc width=8 value=0x0", SP_R_CONFLICT, 18, SP_K_OFFSET);
	expect_bad("18 vmsa-poke h=0 offset=0x0 width=1 value=0x100", SP_R_CONFLICT, 18, SP_K_VALUE);
	expect_bad("18 vmsa-set h=0 field=vmpl value=0x100", SP_R_CONFLICT, 18, SP_K_VALUE);
	expect_bad("18 vmsa-set h=0 field=mxcsr value=0x100000000", SP_R_CONFLICT, 18, SP_K_VALUE);
	expect_bad("18 ap-creation request=1 apic=1 vmpl=0 h=0 gpa=0x1000", SP_R_CONFLICT, 18, SP_K_H);
	expect_bad("18 ap-creation request=1 apic=1 vmpl=0", SP_R_CONFLICT, 18, SP_K_H);

	/* seq strictly increasing within a batch */
	session.have_seq = 0;
	rc = sp_parse_request(&session, "5 hello", 7, SP_LINE, &req, &err);
	check(rc == 0, "seq 5 starts a batch", NULL);
	rc = sp_parse_request(&session, "5 hello", 7, SP_LINE, &req, &err);
	check(rc == -1 && err.reason == SP_R_SEQ_ORDER && err.seq == 5, "repeated seq is seq-order", NULL);
	rc = sp_parse_request(&session, "4 hello", 7, SP_LINE, &req, &err);
	check(rc == -1 && err.reason == SP_R_SEQ_ORDER && err.seq == 4, "smaller seq is seq-order", NULL);
	rc = sp_parse_request(&session, "7 frobnicate", 12, SP_LINE, &req, &err);
	check(rc == -1 && err.reason == SP_R_UNKNOWN_VERB, "a bad line with a new seq ...", NULL);
	rc = sp_parse_request(&session, "6 hello", 7, SP_LINE, &req, &err);
	check(rc == -1 && err.reason == SP_R_SEQ_ORDER, "... still consumes that seq", NULL);
	rc = sp_parse_request(&session, "8 hello", 7, SP_LINE, &req, &err);
	check(rc == 0 && req.seq == 8, "a larger seq is accepted", NULL);
}

static void test_encoding(void)
{
	struct sp_out out;
	struct sp_error err = { SP_R_BAD_SEQ, 0, 0, -1 };
	char version[16];
	int i;

	sp_out_bad_request(&out, &err);
	expect_line(&out, "0 err code=bad-request reason=bad-seq\n", "bad-request without a seq echoes 0");
	err = (struct sp_error){ SP_R_MISSING_KEY, 1, 14, SP_K_MEMORY };
	sp_out_bad_request(&out, &err);
	expect_line(&out, "14 err code=bad-request reason=missing-key key=memory\n", "bad-request names the key");

	sp_out_ok(&out, 3);
	sp_out_hex(&out, "a", 0);
	sp_out_hex(&out, "b", 0xABCDEFULL);
	sp_out_hex(&out, "c", UINT64_MAX);
	sp_out_dec(&out, "d", 0);
	sp_out_sdec(&out, "e", -22);
	expect_line(&out, "3 ok a=0x0 b=0xabcdef c=0xffffffffffffffff d=0 e=-22\n",
		    "canonical hex and decimal");

	sp_out_ok(&out, 1);
	sp_out_token(&out, "kernel", "6.12.111+deb12-amd64", 1);
	sp_out_token(&out, "k2", "6.12.111+deb12-amd64", 0);
	sp_out_token(&out, "k3", "My Kernel!", 1);
	sp_out_token(&out, "k4", "_x", 0);
	expect_line(&out, "1 ok kernel=6.12.111+deb12-amd64 k2=6.12.111_deb12-amd64 k3=My_Kernel_ k4=xx\n",
		    "tokens are sanitized, releases keep + and upper case");

	sp_out_ok(&out, 1);
	for (i = 0; i < 200; i++)
		sp_out_hex(&out, "key", UINT64_MAX);
	check(sp_out_end(&out) == 0, "a response longer than 1024 bytes is refused", NULL);
	sp_out_ok(&out, 1);
	while (out.len + 6 <= SP_MAX_LINE - 1)
		sp_out_raw(&out, "xxxxxx");
	sp_out_raw(&out, "yyyyyyyyyyyyy");
	check(sp_out_end(&out) == 0, "1024 bytes includes the newline", NULL);

	sp_module_version(0x000100, version, sizeof(version));
	check(strcmp(version, "0.1.0") == 0, "module version unpacks as maj.min.patch", version);
}

static void test_kabi(void)
{
	struct snpsim_kresp kresp;
	struct snpsim_kreq kreq;
	struct sp_request req;
	struct sp_error err;
	struct sp_out out;

	parse("4 ap-creation request=1 apic=3 vmpl=0 h=0", &req, &err);
	check(sp_to_kreq(&req, &kreq) == 0 && kreq.abi == SNPSIM_KABI_VERSION &&
	      kreq.op == SNPSIM_OP_AP_CREATION && kreq.arg[0] == 0x80000013ULL &&
	      kreq.arg[1] == 0x300000001ULL && kreq.arg[2] == 0 && kreq.arg[3] == 0 &&
	      kreq.arg[4] == SNPSIM_VALID_ALL &&
	      kreq.arg[5] == (SNPSIM_APC_INFO2_FROM_H | SNPSIM_APC_RAX_FROM_H) && kreq.arg[6] == 0,
	      "CREATE: exit code 0x80000013, info1 apic<<32|vmpl<<16|1, info2 and RAX from h, all valid",
	      NULL);

	parse("4 ap-creation request=2 apic=7 vmpl=1 gpa=0x10a3c1000", &req, &err);
	sp_to_kreq(&req, &kreq);
	check(kreq.arg[1] == 0x700010002ULL && kreq.arg[2] == 0x10a3c1000ULL && kreq.arg[3] == 0 &&
	      kreq.arg[4] == (SNPSIM_VALID_EXIT_CODE | SNPSIM_VALID_INFO1 | SNPSIM_VALID_INFO2) &&
	      kreq.arg[5] == 0,
	      "DESTROY with gpa=: VMPL in [19:16], RAX 0 and not valid", NULL);

	parse("4 ap-creation request=1 apic=1 vmpl=0 h=2 exit_code=0x8000ffff info1=0xdead info2=0xbeef rax=0x21 valid=none",
	      &req, &err);
	sp_to_kreq(&req, &kreq);
	check(kreq.arg[0] == 0x8000ffffULL && kreq.arg[1] == 0xdead && kreq.arg[2] == 0xbeef &&
	      kreq.arg[3] == 0x21 && kreq.arg[4] == 0 && kreq.arg[5] == 0 && kreq.arg[6] == 2,
	      "raw overrides win over h and the defaults", NULL);

	parse("4 vmsa-poke h=3 offset=0x3b0 width=8 value=0x21", &req, &err);
	check(sp_to_kreq(&req, &kreq) == 0 && kreq.op == SNPSIM_OP_VMSA_POKE && kreq.arg[0] == 3 &&
	      kreq.arg[1] == 0x3b0 && kreq.arg[2] == 8 && kreq.arg[3] == 0x21, "vmsa-poke arguments", NULL);
	parse("4 cpu-offline cpu=1", &req, &err);
	check(sp_to_kreq(&req, &kreq) == -1, "cpu-offline is served by the agent", NULL);
	parse("4 host-set-mp-state vcpu=1 state=1", &req, &err);
	check(sp_to_kreq(&req, &kreq) == -1, "host-set-mp-state has no module operation", NULL);

	parse("5 ap-creation request=1 apic=3 vmpl=0 h=0", &req, &err);
	memset(&kresp, 0, sizeof(kresp));
	kresp.val[0] = 2;
	kresp.val[1] = 5;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "5 ok sw_exit_info1=0x2 sw_exit_info2=0x5\n",
		    "a rejected AP Creation is an ok outcome");
	kresp.status = SNPSIM_ST_FAILED;
	kresp.err = 11;
	kresp.reason = SNPSIM_R_NMI;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "5 err code=failed errno=11 reason=nmi-in-window\n", "NMI in the GHCB window");
	kresp.status = SNPSIM_ST_BUSY;
	kresp.err = 0;
	kresp.reason = SNPSIM_R_AP_MAY_RUN;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "5 err code=busy reason=ap-may-run\n", "busy with its reason");
	kresp.status = SNPSIM_ST_BAD_HANDLE;
	kresp.reason = SNPSIM_R_NONE;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "5 err code=bad-handle\n", "bad-handle");
	kresp.status = 99;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "5 err code=failed errno=71 reason=unknown-module-status\n",
		    "an unknown module status is not guessed");
	kresp.status = SNPSIM_ST_FAILED;
	kresp.err = 5000;
	kresp.reason = 77;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "5 err code=failed reason=unknown-module-reason\n",
		    "an errno outside 1..4095 is not written");

	parse("6 pvalidate h=0 validate=1 size=0", &req, &err);
	memset(&kresp, 0, sizeof(kresp));
	kresp.val[0] = 0x100000006ULL;
	kresp.val[1] = 7;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "6 ok eax=6 cf=1\n", "pvalidate: EAX is 32 bits, CF is 0|1");
	parse("7 pv-kick apic=1", &req, &err);
	kresp.val[0] = (uint64_t)-1000;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "7 ok ret=-1000\n", "pv-kick returns a signed decimal");
	parse("8 sev-info", &req, &err);
	kresp.val[0] = 0x0002000133001ULL;
	kresp.val[1] = 2;
	kresp.val[2] = 1;
	kresp.val[3] = 51;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "8 ok msr=0x2000133001 max=2 min=1 cbit=51\n", "sev-info");
	parse("9 vmsa-free h=0", &req, &err);
	kresp.val[0] = 2;
	kresp.val[1] = 0;
	sp_from_kresp(&req, &kresp, &out);
	expect_line(&out, "9 ok eax=2 freed=0\n", "vmsa-free keeps a page whose VMSA bit stayed set");
}

/* Random lines over the protocol's alphabet never crash and always classify. */
static void test_fuzz(void)
{
	static const char *const atoms[] = {
		"1", "2", "0", "42", "4294967295", "x", " ", "  ", "=", ",", "h", "h=0", "h=63", "h=64",
		"hello", "vmsa-alloc", "ap-creation", "vmsa-poke", "request=1", "apic=3", "vmpl=0",
		"gpa=0x1000", "valid=rax", "valid=none", "offset=0xff8", "width=8", "value=0x1",
		"placement=split", "memory=private", "\x01", "\x7f", "0x", "-", "cpu=1",
	};
	uint64_t state = 0x9e3779b97f4a7c15ULL;
	struct sp_session session = { 0, 0 };
	struct sp_request req;
	struct sp_error err;
	char line[SP_MAX_LINE];
	int i, j, bad = 0;

	for (i = 0; i < 200000; i++) {
		size_t len = 0;
		int parts;

		state ^= state << 13;
		state ^= state >> 7;
		state ^= state << 17;
		parts = (int)(state % 9);
		for (j = 0; j < parts; j++) {
			const char *atom;
			size_t n;

			state ^= state << 13;
			state ^= state >> 7;
			state ^= state << 17;
			atom = atoms[state % (sizeof(atoms) / sizeof(atoms[0]))];
			n = strlen(atom);
			if (len + n + 1 >= sizeof(line))
				break;
			if (j)
				line[len++] = ' ';
			memcpy(line + len, atom, n);
			len += n;
		}
		if (sp_parse_request(&session, line, len, SP_LINE, &req, &err) == 0) {
			const uint32_t all = (1U << SP_K_COUNT) - 1;

			if (req.verb >= SP_V_COUNT || (req.present & ~all) || !err.has_seq)
				bad++;
		} else if (err.reason <= SP_R_OK || err.reason >= SP_R_COUNT) {
			bad++;
		}
	}
	check(bad == 0, "200000 random lines parse or fail with a known reason", NULL);
}

int main(void)
{
	test_valid();
	test_malformed();
	test_encoding();
	test_kabi();
	test_fuzz();
	printf("1..%d\n# checks %d, failures %d\n", checks, checks, failures);
	return failures ? 1 : 0;
}
