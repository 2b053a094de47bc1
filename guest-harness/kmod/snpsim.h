/* SPDX-License-Identifier: GPL-2.0-only */
/* Internal declarations shared by the snpsim module's files. */
#ifndef SNPSIM_H
#define SNPSIM_H

#include <linux/cpumask.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/types.h>

#include "snpsim_kabi.h"

/* Platform facts read once at load (snpsim_guest.c). */
struct snpsim_platform {
	u64 sev_status;		/* MSR 0xC0010131 */
	u64 hv_features;	/* GHCB MSR protocol 0x080/0x081, GHCBData[63:12] */
	u16 ghcb_version;	/* min(hypervisor max, 2): SNP needs GHCB protocol version 2 */
};

extern struct snpsim_platform snpsim_platform;

/* An operation's outcome: status, reason and errno for struct snpsim_kresp. */
struct snpsim_result {
	u32 status;
	u32 reason;
	s32 err;
};

static inline struct snpsim_result snpsim_ok(void)
{
	return (struct snpsim_result){ SNPSIM_ST_OK, SNPSIM_R_NONE, 0 };
}

static inline struct snpsim_result snpsim_fail(s32 err, u32 reason)
{
	return (struct snpsim_result){ SNPSIM_ST_FAILED, reason, err };
}

static inline struct snpsim_result snpsim_refuse(u32 status, u32 reason)
{
	return (struct snpsim_result){ status, reason, 0 };
}

/* ---- snpsim_ghcb.c: GHCB MSR protocol and raw NAE events ---- */

int snpsim_msr_protocol(u64 request, u64 response_code, u64 *response);

struct snpsim_nae {
	u64 exit_code;
	u64 info1;
	u64 info2;
	u64 rax;
	u32 valid;		/* SNPSIM_VALID_* */
};

struct snpsim_result snpsim_nae_call(const struct snpsim_nae *in, u64 *info1, u64 *info2);

/* ---- snpsim_cpu.c: CPUs, IPIs, CPU-online stamps ---- */

int snpsim_cpu_init(void);
void snpsim_cpu_exit(void);
u64 snpsim_stamp_next(void);
u64 snpsim_cpu_online_stamp(unsigned int cpu);
int snpsim_apic_to_cpu(u32 apic);
struct snpsim_result snpsim_cpu_apic(u64 cpu, u64 *apic);
struct snpsim_result snpsim_init_sipi(u64 apic, u64 vector);
struct snpsim_result snpsim_pv_kick(u64 apic, u64 *ret);

/* ---- snpsim_vmsa.c: VMSA pages, templates, the marker stub ---- */

/*
 * One VMSA page of a session. All fields are protected by snpsim_op_lock.
 */
struct snpsim_page {
	struct list_head node;		/* on the list of all pages not yet returned */
	bool kept;			/* no session owns it: retried by snpsim_kept_reap() */
	bool leak;			/* state unknown after a failed conversion: never freed */
	struct page *block;		/* order-0 page (split) or order-9 block (2m-aligned) */
	unsigned int order;		/* 0 or 9 */
	void *va;			/* the VMSA page in the direct map */
	phys_addr_t pa;
	u32 memory;			/* enum snpsim_memory as allocated */
	bool shared;			/* C-bit clear in the direct map, page converted to shared */
	bool unvalidated;		/* VMSA page currently not validated: never touched */
	bool rescinded;			/* some page of the block was rescinded at some point */
	bool adjusted_2m;		/* an RMPADJUST with size=1 ran on the block */
	u64 sev_features;		/* last value written at VMSA offset 0x3B0 */
	/* Marker stub (vmsa-init stub=1): its own page, below 4 GiB. */
	void *stub_va;
	phys_addr_t stub_pa;
	u32 cookie;
	/* Liveness: which CPUs an AP Creation may have handed this page to, and when. */
	cpumask_var_t suspects;
	u64 ref_stamp;
	bool ref_unknown;		/* the target APIC ID is not a CPU Linux knows */
};

struct snpsim_page *snpsim_page_alloc(u64 placement, u64 memory, struct snpsim_result *res);
struct snpsim_result snpsim_page_init(struct snpsim_page *p, u64 tpl, u64 stub, u64 *sev_features);
struct snpsim_result snpsim_page_set(struct snpsim_page *p, u64 field, u64 value);
struct snpsim_result snpsim_page_poke(struct snpsim_page *p, u64 offset, u64 width, u64 value);
struct snpsim_result snpsim_page_rmpadjust(struct snpsim_page *p, u64 rdx, u64 size, u64 *eax);
struct snpsim_result snpsim_page_pvalidate(struct snpsim_page *p, u64 validate, u64 size,
					   u64 *eax, u64 *cf);
struct snpsim_result snpsim_page_wait_marker(struct snpsim_page *p, u64 timeout_ms, u64 *ran);
void snpsim_pages_referenced_by(u64 info2, u32 apic);
struct snpsim_result snpsim_page_free(struct snpsim_page *p, u64 *eax, u64 *freed);
void snpsim_page_release(struct snpsim_page *p);
void snpsim_kept_reap(bool final);

#endif /* SNPSIM_H */
