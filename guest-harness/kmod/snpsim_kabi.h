/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * snpsim guest module <-> agent interface ("kABI"), version 1.
 *
 * Transport: the debugfs file /sys/kernel/debug/snpsim/ctl (mode 0600). A client writes exactly
 * one struct snpsim_kreq (72 bytes); the write executes the operation synchronously and stores
 * one struct snpsim_kresp (72 bytes), which the next read returns. Every open file is a session:
 * VMSA handles 0..63 belong to the session that allocated them, and closing the file frees them
 * where that is safe (README.md "Safety rules").
 *
 * Stability rules: the layout below never changes within a version; new operations, statuses and
 * reasons may be added with new numbers. SNPSIM_OP_INFO is answered whatever abi the request
 * carries, and its response carries the module's abi, so a client can always find out which
 * version it talks to. Every other operation with a foreign abi is answered SNPSIM_ST_BAD_REQUEST
 * / SNPSIM_R_ABI. All fields are little-endian (x86).
 */
#ifndef SNPSIM_KABI_H
#define SNPSIM_KABI_H

#include <linux/types.h>

#define SNPSIM_KABI_VERSION 1

/* Module version, also MODULE_VERSION(): major.minor.patch. */
#define SNPSIM_MODULE_VERSION_MAJOR 0
#define SNPSIM_MODULE_VERSION_MINOR 1
#define SNPSIM_MODULE_VERSION_PATCH 0
#define SNPSIM_MODULE_VERSION_STR "0.1.0"

#define SNPSIM_CTL_PATH "/sys/kernel/debug/snpsim/ctl"

/* VMSA handles per session (PROTOCOL.md: h=<0..63>). */
#define SNPSIM_HANDLES 64

/*
 * Operations. arg[] / val[] use, in order (unlisted entries are 0 on input and ignored):
 *
 *  INFO          -                                   val: abi, version (maj<<16|min<<8|patch),
 *                                                         sev_status, vmpl, hv_features at load
 *  HV_FEATURES   -                                   val: raw GHCB MSR response, GHCBData[63:12]
 *  SEV_INFO      -                                   val: raw GHCB MSR response, max, min, cbit
 *  VMSA_ALLOC    h, placement, memory                val: gpa
 *  VMSA_INIT     h, template, stub (0|1)             val: sev_features written
 *  VMSA_SET      h, field, value
 *  VMSA_POKE     h, offset (< 0x1000), width (1|2|4|8), value
 *  RMPADJUST     h, rdx, size (0|1)                  val: eax
 *  PVALIDATE     h, validate (0|1), size (0|1)       val: eax, cf
 *  AP_CREATION   exit_code, info1, info2, rax,       val: sw_exit_info_1, sw_exit_info_2
 *                valid (SNPSIM_VALID_*), flags (SNPSIM_APC_*), h
 *  CPU_APIC      cpu                                 val: apic id
 *  INIT_SIPI     apic, vector (0..0xff)
 *  PV_KICK       apic                                val: hypercall return (s64)
 *  WAIT_MARKER   h, timeout_ms (<= 10000)            val: ran (0|1)
 *  VMSA_FREE     h                                   val: eax (RMPADJUST clearing VMSA), freed
 */
enum snpsim_op {
	SNPSIM_OP_INFO = 1,
	SNPSIM_OP_HV_FEATURES = 2,
	SNPSIM_OP_SEV_INFO = 3,
	SNPSIM_OP_VMSA_ALLOC = 4,
	SNPSIM_OP_VMSA_INIT = 5,
	SNPSIM_OP_VMSA_SET = 6,
	SNPSIM_OP_VMSA_POKE = 7,
	SNPSIM_OP_RMPADJUST = 8,
	SNPSIM_OP_PVALIDATE = 9,
	SNPSIM_OP_AP_CREATION = 10,
	SNPSIM_OP_CPU_APIC = 11,
	SNPSIM_OP_INIT_SIPI = 12,
	SNPSIM_OP_PV_KICK = 13,
	SNPSIM_OP_WAIT_MARKER = 14,
	SNPSIM_OP_VMSA_FREE = 15,
};

/* Response status; the agent maps each to a PROTOCOL.md error code. */
enum snpsim_status {
	SNPSIM_ST_OK = 0,
	SNPSIM_ST_BAD_REQUEST = 1,	/* bad-request */
	SNPSIM_ST_BAD_HANDLE = 2,	/* bad-handle */
	SNPSIM_ST_BUSY = 3,		/* busy */
	SNPSIM_ST_UNSUPPORTED = 4,	/* unsupported */
	SNPSIM_ST_FAILED = 5,		/* failed, errno= */
	SNPSIM_ST_NOT_SNP = 6,		/* not-snp */
};

/* Why a request was refused (the agent writes it as reason=<token>). */
enum snpsim_reason {
	SNPSIM_R_NONE = 0,
	SNPSIM_R_ABI = 1,		/* "abi": request abi is not SNPSIM_KABI_VERSION */
	SNPSIM_R_ARG = 2,		/* "bad-argument": an argument is out of range */
	SNPSIM_R_NMI = 3,		/* "nmi-in-window": an NMI hit the GHCB window, outcome unknown */
	SNPSIM_R_GHCB = 4,		/* "ghcb-unknown": the GHCB MSR holds no GHCB GPA on this CPU */
	SNPSIM_R_AP_MAY_RUN = 5,	/* "ap-may-run": an AP may still run this VMSA */
	SNPSIM_R_UNVALIDATED = 6,	/* "unvalidated": the page is not validated, never touched */
	SNPSIM_R_NEEDS_2M = 7,		/* "needs-2m-aligned": size=1 on a split page */
	SNPSIM_R_NO_STUB = 8,		/* "no-stub": vmsa-init stub=1 was not done */
	SNPSIM_R_KEPT = 9,		/* "page-kept": the page could not be returned; kept */
	SNPSIM_R_NOT_KVM = 10,		/* "not-kvm": no KVM paravirt interface */
};

enum snpsim_placement {
	SNPSIM_PLACE_SPLIT = 0,		/* second page of an order-1 block: never 2 MiB aligned */
	SNPSIM_PLACE_2M = 1,		/* first page of a 2 MiB block, the whole block is owned */
};

enum snpsim_memory {
	SNPSIM_MEM_PRIVATE = 0,
	SNPSIM_MEM_SHARED = 1,		/* set_memory_decrypted() */
	SNPSIM_MEM_UNVALIDATED = 2,	/* private, then PVALIDATE rescind */
};

enum snpsim_template {
	SNPSIM_TPL_LINUX = 0,
	SNPSIM_TPL_OVMF = 1,
	SNPSIM_TPL_ZERO = 2,
};

/* vmsa-set fields, in PROTOCOL.md order. */
enum snpsim_field {
	SNPSIM_F_SEV_FEATURES,
	SNPSIM_F_VMPL,
	SNPSIM_F_CPL,
	SNPSIM_F_EFER,
	SNPSIM_F_CR0,
	SNPSIM_F_CR3,
	SNPSIM_F_CR4,
	SNPSIM_F_DR6,
	SNPSIM_F_DR7,
	SNPSIM_F_RFLAGS,
	SNPSIM_F_RIP,
	SNPSIM_F_RSP,
	SNPSIM_F_RAX,
	SNPSIM_F_G_PAT,
	SNPSIM_F_XCR0,
	SNPSIM_F_MXCSR,
	SNPSIM_F_X87_FCW,
	SNPSIM_F_X87_FTW,
	SNPSIM_F_CS_SELECTOR,
	SNPSIM_F_CS_ATTRIB,
	SNPSIM_F_CS_LIMIT,
	SNPSIM_F_CS_BASE,
	SNPSIM_F_COUNT
};

/* AP_CREATION valid mask: which GHCB fields get their valid-bitmap bit. */
#define SNPSIM_VALID_EXIT_CODE	(1U << 0)
#define SNPSIM_VALID_INFO1	(1U << 1)
#define SNPSIM_VALID_INFO2	(1U << 2)
#define SNPSIM_VALID_RAX	(1U << 3)
#define SNPSIM_VALID_ALL	0xfU

/* AP_CREATION flags: take a value from handle arg[6] instead of arg[2] / arg[3]. */
#define SNPSIM_APC_INFO2_FROM_H	(1U << 0)	/* SW_EXITINFO2 := the handle's GPA */
#define SNPSIM_APC_RAX_FROM_H	(1U << 1)	/* RAX := the handle's VMSA SEV_FEATURES */

struct snpsim_kreq {
	__u32 abi;		/* SNPSIM_KABI_VERSION */
	__u32 op;		/* enum snpsim_op */
	__u64 arg[8];
};

struct snpsim_kresp {
	__u32 abi;		/* SNPSIM_KABI_VERSION of the module */
	__u32 op;		/* echo of the request's op */
	__u32 status;		/* enum snpsim_status */
	__u32 reason;		/* enum snpsim_reason */
	__s32 err;		/* positive Linux errno with SNPSIM_ST_FAILED, else 0 */
	__u32 reserved;
	__u64 val[6];
};

_Static_assert(sizeof(struct snpsim_kreq) == 72, "kABI v1 request is 72 bytes");
_Static_assert(sizeof(struct snpsim_kresp) == 72, "kABI v1 response is 72 bytes");

#endif /* SNPSIM_KABI_H */
