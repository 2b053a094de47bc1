// SPDX-License-Identifier: GPL-2.0-only
/*
 * VMSA pages: allocation (placement and memory state), the Linux / OVMF / zero templates, the
 * marker stub, RMPADJUST and PVALIDATE on them, and freeing only where that is safe.
 *
 * Every function here runs under snpsim_op_lock (snpsim_guest.c).
 */
#define pr_fmt(fmt) "snpsim: " fmt

#include <linux/delay.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/jiffies.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/sched/signal.h>
#include <linux/set_memory.h>
#include <linux/sizes.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <asm/msr-index.h>
#include <asm/processor-flags.h>
#include <asm/special_insns.h>
#include <asm/svm.h>

#include "snpsim.h"
#include "snpsim_insn.h"

/* VMSA layout ([LX] arch/x86/include/asm/svm.h struct sev_es_save_area; ap-creation.md A.6). */
#define VMSA_AT(field, offset) static_assert(offsetof(struct sev_es_save_area, field) == (offset))
VMSA_AT(es, 0x000);
VMSA_AT(cs, 0x010);
VMSA_AT(ds, 0x030);
VMSA_AT(ldtr, 0x070);
VMSA_AT(tr, 0x090);
VMSA_AT(vmpl, 0x0ca);
VMSA_AT(cpl, 0x0cb);
VMSA_AT(efer, 0x0d0);
VMSA_AT(cr4, 0x148);
VMSA_AT(cr3, 0x150);
VMSA_AT(cr0, 0x158);
VMSA_AT(dr7, 0x160);
VMSA_AT(dr6, 0x168);
VMSA_AT(rflags, 0x170);
VMSA_AT(rip, 0x178);
VMSA_AT(rsp, 0x1d8);
VMSA_AT(rax, 0x1f8);
VMSA_AT(g_pat, 0x268);
VMSA_AT(sev_features, 0x3b0);
VMSA_AT(xcr0, 0x3e8);
VMSA_AT(mxcsr, 0x408);
VMSA_AT(x87_ftw, 0x40c);
VMSA_AT(x87_fcw, 0x410);
/* struct vmcb_seg: selector u16 @0, attrib u16 @2, limit u32 @4, base u64 @8. */
static_assert(offsetof(struct vmcb_seg, attrib) == 2 && offsetof(struct vmcb_seg, base) == 8);

/* 2 MiB = 2^9 pages of 4 KiB. */
#define SNPSIM_ORDER_2M			9
/* RMPADJUST RDX clearing the VMSA bit: target VMPL1, no permissions ([LX] snp_set_vmsa()). */
#define SNPSIM_RMPADJUST_CLEAR		0x1ULL
/* RMPADJUST/PVALIDATE FAIL_SIZEMISMATCH ([LX] asm/sev.h PVALIDATE_FAIL_SIZEMISMATCH). */
#define SNPSIM_RMP_FAIL_SIZEMISMATCH	6
/* vmsa-poke window and the marker word in the stub page. */
#define SNPSIM_VMSA_SIZE		0x1000
#define SNPSIM_MARKER_OFFSET		0x800

/* AP INIT values ([LX] arch/x86/coco/sev/core.c AP_INIT_*; [APM] vol. 2 "Processor Initialization State"). */
#define AP_INIT_SEG_LIMIT		0xffff
#define AP_INIT_RFLAGS_DEFAULT		0x2
#define AP_INIT_DR6_DEFAULT		0xffff0ff0
#define AP_INIT_DR7_DEFAULT		0x400
#define AP_INIT_GPAT_DEFAULT		0x0007040600070406ULL
#define AP_INIT_XCR0_DEFAULT		0x1
#define AP_INIT_X87_FTW_DEFAULT		0x5555
#define AP_INIT_X87_FCW_DEFAULT		0x0040
#define AP_INIT_CR0_DEFAULT		0x60000010	/* CD | NW | ET */
#define AP_INIT_MXCSR_DEFAULT		0x1f80
/* OVMF's reset CR0 is ET only, plus CD/NW as the AP had them ([edk2] MpInitLib AmdSev.c). */
#define OVMF_INIT_CR0_DEFAULT		0x10

/* Segment attributes ([LX] arch/x86/coco/sev/core.c INIT_*_ATTRIBS; [edk2] SEV_ES_RESET_*_TYPE). */
#define INIT_CS_ATTRIBS		(SVM_SELECTOR_P_MASK | SVM_SELECTOR_S_MASK | \
				 SVM_SELECTOR_READ_MASK | SVM_SELECTOR_CODE_MASK)	/* 0x9a */
#define INIT_DS_ATTRIBS		(SVM_SELECTOR_P_MASK | SVM_SELECTOR_S_MASK | \
				 SVM_SELECTOR_WRITE_MASK)				/* 0x92 */
#define INIT_LDTR_ATTRIBS	(SVM_SELECTOR_P_MASK | 2)				/* 0x82 */
#define INIT_TR_ATTRIBS		(SVM_SELECTOR_P_MASK | 3)				/* 0x83 */
static_assert(INIT_CS_ATTRIBS == 0x9a && INIT_DS_ATTRIBS == 0x92);

/*
 * The marker stub: 16-bit real mode, entered with CS.base = DS.base = the stub page and IP = 0.
 *   0000  66 c7 06 00 08 <cookie>   mov dword [0x0800], cookie
 *   0009  f4                        hlt     ; an automatic exit for SEV-ES/SNP, no GHCB needed
 *   000a  eb fd                     jmp 0009
 * It raises no #VC (no CPUID, IN/OUT, MSR or MMIO access): the AP has no handler.
 */
static const u8 snpsim_stub_code[] = {
	0x66, 0xc7, 0x06, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00,
	0xf4,
	0xeb, 0xfd,
};
#define SNPSIM_STUB_COOKIE_AT 5

/* vmsa-set fields: offset and width in the VMSA. */
struct snpsim_field_desc {
	u16 offset;
	u8 width;
};

#define FIELD(f) { offsetof(struct sev_es_save_area, f), sizeof_field(struct sev_es_save_area, f) }
static const struct snpsim_field_desc snpsim_fields[SNPSIM_F_COUNT] = {
	[SNPSIM_F_SEV_FEATURES] = FIELD(sev_features),
	[SNPSIM_F_VMPL] = FIELD(vmpl),
	[SNPSIM_F_CPL] = FIELD(cpl),
	[SNPSIM_F_EFER] = FIELD(efer),
	[SNPSIM_F_CR0] = FIELD(cr0),
	[SNPSIM_F_CR3] = FIELD(cr3),
	[SNPSIM_F_CR4] = FIELD(cr4),
	[SNPSIM_F_DR6] = FIELD(dr6),
	[SNPSIM_F_DR7] = FIELD(dr7),
	[SNPSIM_F_RFLAGS] = FIELD(rflags),
	[SNPSIM_F_RIP] = FIELD(rip),
	[SNPSIM_F_RSP] = FIELD(rsp),
	[SNPSIM_F_RAX] = FIELD(rax),
	[SNPSIM_F_G_PAT] = FIELD(g_pat),
	[SNPSIM_F_XCR0] = FIELD(xcr0),
	[SNPSIM_F_MXCSR] = FIELD(mxcsr),
	[SNPSIM_F_X87_FCW] = FIELD(x87_fcw),
	[SNPSIM_F_X87_FTW] = FIELD(x87_ftw),
	[SNPSIM_F_CS_SELECTOR] = FIELD(cs.selector),
	[SNPSIM_F_CS_ATTRIB] = FIELD(cs.attrib),
	[SNPSIM_F_CS_LIMIT] = FIELD(cs.limit),
	[SNPSIM_F_CS_BASE] = FIELD(cs.base),
};

/* Every page not yet returned to the kernel: session-owned ones and kept ones. */
static LIST_HEAD(snpsim_pages);

static bool snpsim_fits(u64 value, unsigned int width)
{
	return width >= 8 || !(value >> (8 * width));
}

static void snpsim_page_destroy(struct snpsim_page *p)
{
	list_del(&p->node);
	free_cpumask_var(p->suspects);
	kfree(p);
}

struct snpsim_page *snpsim_page_alloc(u64 placement, u64 memory, struct snpsim_result *res)
{
	struct snpsim_page *p;
	struct page *block;
	bool cf;
	u32 eax;
	int err;

	if (placement > SNPSIM_PLACE_2M || memory > SNPSIM_MEM_UNVALIDATED) {
		*res = snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
		return NULL;
	}
	p = kzalloc(sizeof(*p), GFP_KERNEL);
	if (!p || !zalloc_cpumask_var(&p->suspects, GFP_KERNEL)) {
		kfree(p);
		*res = snpsim_fail(ENOMEM, SNPSIM_R_NONE);
		return NULL;
	}

	if (placement == SNPSIM_PLACE_SPLIT) {
		/*
		 * Linux's snp_alloc_vmsa_page(): the second page of an order-1 block is 8 KiB + 4 KiB
		 * aligned, so never 2 MiB aligned (erratum: spurious RMP #PF when a host large page
		 * collides with a 2 MiB-aligned VMSA; KVM rejects such GPAs, ap-creation.md C.1).
		 */
		block = alloc_pages(GFP_KERNEL | __GFP_ZERO, 1);
		if (block) {
			split_page(block, 1);
			__free_page(block);
			block++;
		}
		p->order = 0;
	} else {
		/*
		 * A naturally aligned order-9 block. The whole 2 MiB stays owned so that size=1
		 * (2 MiB) RMPADJUST/PVALIDATE can only ever affect the module's own memory.
		 */
		block = alloc_pages(GFP_KERNEL | __GFP_ZERO | __GFP_NOWARN, SNPSIM_ORDER_2M);
		p->order = SNPSIM_ORDER_2M;
	}
	if (!block) {
		free_cpumask_var(p->suspects);
		kfree(p);
		*res = snpsim_fail(ENOMEM, SNPSIM_R_NONE);
		return NULL;
	}
	p->block = block;
	p->va = page_address(block);
	p->pa = page_to_phys(block);
	p->memory = memory;
	list_add(&p->node, &snpsim_pages);

	switch (memory) {
	case SNPSIM_MEM_SHARED:
		err = set_memory_decrypted((unsigned long)p->va, 1);
		if (err) {
			/* Page state unknown: never reuse it (as Linux's dma-direct does). */
			p->leak = true;
			p->kept = true;
			pr_warn("set_memory_decrypted(%pa) failed (%d), leaking the page\n", &p->pa, err);
			*res = snpsim_fail(-err, SNPSIM_R_KEPT);
			return NULL;
		}
		p->shared = true;
		break;
	case SNPSIM_MEM_UNVALIDATED:
		eax = snpsim_pvalidate((unsigned long)p->va, 0, 0, &cf);
		if (eax) {
			/* Still validated: give it back. */
			__free_pages(p->block, p->order);
			snpsim_page_destroy(p);
			*res = snpsim_fail(EIO, SNPSIM_R_NONE);
			return NULL;
		}
		/* From here on nothing may load or store through p->va. */
		p->unvalidated = true;
		p->rescinded = true;
		break;
	}
	*res = snpsim_ok();
	return p;
}

static void snpsim_fill_init_state(struct sev_es_save_area *v, bool ovmf)
{
	v->cs.limit = AP_INIT_SEG_LIMIT;
	v->cs.attrib = INIT_CS_ATTRIBS;
	v->ds.limit = AP_INIT_SEG_LIMIT;
	v->ds.attrib = INIT_DS_ATTRIBS;
	v->es = v->ds;
	v->fs = v->ds;
	v->gs = v->ds;
	v->ss = v->ds;
	v->gdtr.limit = AP_INIT_SEG_LIMIT;
	v->ldtr.limit = AP_INIT_SEG_LIMIT;
	v->idtr.limit = AP_INIT_SEG_LIMIT;
	v->tr.limit = AP_INIT_SEG_LIMIT;
	if (ovmf) {
		/*
		 * OVMF's SevSnpCreateSaveArea() sets the TSS type on Ldtr a second time instead of
		 * on Tr: LDTR ends up 0x83 and TR's attributes stay 0. Reproduced on purpose.
		 */
		v->ldtr.attrib = INIT_TR_ATTRIBS;
		v->cr0 = OVMF_INIT_CR0_DEFAULT | (native_read_cr0() & (X86_CR0_NW | X86_CR0_CD));
	} else {
		v->ldtr.attrib = INIT_LDTR_ATTRIBS;
		v->tr.attrib = INIT_TR_ATTRIBS;
		v->cr0 = AP_INIT_CR0_DEFAULT;
	}
	/* Both keep only CR4.MCE of the running CPU. */
	v->cr4 = native_read_cr4() & X86_CR4_MCE;
	v->dr7 = AP_INIT_DR7_DEFAULT;
	v->dr6 = AP_INIT_DR6_DEFAULT;
	v->rflags = AP_INIT_RFLAGS_DEFAULT;
	v->g_pat = AP_INIT_GPAT_DEFAULT;
	v->xcr0 = AP_INIT_XCR0_DEFAULT;
	v->mxcsr = AP_INIT_MXCSR_DEFAULT;
	v->x87_ftw = AP_INIT_X87_FTW_DEFAULT;
	v->x87_fcw = AP_INIT_X87_FCW_DEFAULT;
	/* VMRUN fails without EFER.SVME. */
	v->efer = EFER_SVME;
	/* The module only loads at VMPL0. */
	v->vmpl = 0;
	/* SEV_STATUS bit n+2 is SEV_FEATURES bit n (ap-creation.md A.5). */
	v->sev_features = snpsim_platform.sev_status >> 2;
}

/*
 * Points CS:IP and DS at the stub page. Its PA is below 4 GiB but usually above 1 MiB, so it
 * cannot be a SIPI vector: the VMSA's hidden CS base holds the PA itself (real mode computes
 * CS.base + IP, as at the reset vector's CS.base 0xFFFF0000). The selectors carry PA >> 4, which
 * equals the base for a page below 1 MiB; the stub never reloads a segment register.
 */
static void snpsim_stub_arm(struct snpsim_page *p, struct sev_es_save_area *v)
{
	u16 selector = (u16)(p->stub_pa >> 4);
	u8 *code = p->stub_va;

	p->cookie = get_random_u32() | 1;
	memcpy(code, snpsim_stub_code, sizeof(snpsim_stub_code));
	memcpy(code + SNPSIM_STUB_COOKIE_AT, &p->cookie, sizeof(p->cookie));
	WRITE_ONCE(*(u32 *)(code + SNPSIM_MARKER_OFFSET), 0);

	v->cs.base = p->stub_pa;
	v->cs.selector = selector;
	v->cs.limit = AP_INIT_SEG_LIMIT;
	v->cs.attrib = INIT_CS_ATTRIBS;
	v->rip = 0;
	v->ds.base = p->stub_pa;
	v->ds.selector = selector;
	v->ds.limit = AP_INIT_SEG_LIMIT;
	v->ds.attrib = INIT_DS_ATTRIBS;
}

struct snpsim_result snpsim_page_init(struct snpsim_page *p, u64 tpl, u64 stub, u64 *sev_features)
{
	struct sev_es_save_area *v = p->va;
	struct page *pg;

	if (tpl > SNPSIM_TPL_ZERO || stub > 1)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	if (p->unvalidated)
		return snpsim_fail(EACCES, SNPSIM_R_UNVALIDATED);
	if (stub && !p->stub_va) {
		/* Below 4 GiB: a real-mode CS base is 32 bits. */
		pg = alloc_page(GFP_KERNEL | GFP_DMA32 | __GFP_ZERO);
		if (!pg)
			return snpsim_fail(ENOMEM, SNPSIM_R_NONE);
		if (page_to_phys(pg) + PAGE_SIZE > SZ_4G) {
			__free_page(pg);
			return snpsim_fail(ENOMEM, SNPSIM_R_NONE);
		}
		p->stub_va = page_address(pg);
		p->stub_pa = page_to_phys(pg);
	}

	memset(v, 0, PAGE_SIZE);
	if (tpl != SNPSIM_TPL_ZERO)
		snpsim_fill_init_state(v, tpl == SNPSIM_TPL_OVMF);
	if (stub)
		snpsim_stub_arm(p, v);
	else
		p->cookie = 0;
	p->sev_features = v->sev_features;
	*sev_features = p->sev_features;
	return snpsim_ok();
}

static struct snpsim_result snpsim_page_store(struct snpsim_page *p, u64 offset, u64 width, u64 value)
{
	if (p->unvalidated)
		return snpsim_fail(EACCES, SNPSIM_R_UNVALIDATED);
	/* x86 is little-endian: the low @width bytes of @value are the field. */
	memcpy((u8 *)p->va + offset, &value, width);
	p->sev_features = ((struct sev_es_save_area *)p->va)->sev_features;
	return snpsim_ok();
}

struct snpsim_result snpsim_page_set(struct snpsim_page *p, u64 field, u64 value)
{
	const struct snpsim_field_desc *d;

	if (field >= SNPSIM_F_COUNT)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	d = &snpsim_fields[field];
	if (!snpsim_fits(value, d->width))
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	return snpsim_page_store(p, d->offset, d->width, value);
}

struct snpsim_result snpsim_page_poke(struct snpsim_page *p, u64 offset, u64 width, u64 value)
{
	if (offset >= SNPSIM_VMSA_SIZE || (width != 1 && width != 2 && width != 4 && width != 8) ||
	    offset + width > SNPSIM_VMSA_SIZE || !snpsim_fits(value, width))
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	return snpsim_page_store(p, offset, width, value);
}

struct snpsim_result snpsim_page_rmpadjust(struct snpsim_page *p, u64 rdx, u64 size, u64 *eax)
{
	if (size > 1)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	/* 2 MiB on a split page would change RMP entries of memory the kernel owns. */
	if (size && p->order != SNPSIM_ORDER_2M)
		return snpsim_fail(EINVAL, SNPSIM_R_NEEDS_2M);
	if (size)
		p->adjusted_2m = true;
	*eax = snpsim_rmpadjust((unsigned long)p->va, size, rdx);
	return snpsim_ok();
}

struct snpsim_result snpsim_page_pvalidate(struct snpsim_page *p, u64 validate, u64 size,
					   u64 *eax, u64 *cf)
{
	bool carry;
	u32 rc;

	if (validate > 1 || size > 1)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	/* Rescinding 2 MiB around a split page would unvalidate kernel memory: guest death. */
	if (size && p->order != SNPSIM_ORDER_2M)
		return snpsim_fail(EINVAL, SNPSIM_R_NEEDS_2M);
	if (!validate)
		p->rescinded = true;
	rc = snpsim_pvalidate((unsigned long)p->va, size, validate, &carry);
	/* EAX 0 (CF either way): the VMSA page's Validated bit now equals @validate. */
	if (rc == 0)
		p->unvalidated = !validate;
	*eax = rc;
	*cf = carry;
	return snpsim_ok();
}

struct snpsim_result snpsim_page_wait_marker(struct snpsim_page *p, u64 timeout_ms, u64 *ran)
{
	unsigned long deadline;
	u32 *marker;

	if (timeout_ms > 10000)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	if (!p->stub_va || !p->cookie)
		return snpsim_fail(EINVAL, SNPSIM_R_NO_STUB);
	marker = (u32 *)((u8 *)p->stub_va + SNPSIM_MARKER_OFFSET);
	deadline = jiffies + msecs_to_jiffies(timeout_ms);
	for (;;) {
		if (READ_ONCE(*marker) == p->cookie) {
			*ran = 1;
			return snpsim_ok();
		}
		if (time_after(jiffies, deadline))
			break;
		if (signal_pending(current))
			return snpsim_fail(EINTR, SNPSIM_R_NONE);
		usleep_range(500, 1000);
	}
	*ran = 0;
	return snpsim_ok();
}

/*
 * Records that an AP Creation may have handed @p to the vCPU with APIC ID @apic. Called before
 * the VMGEXIT, whatever the hypervisor answers: KVM versions differ in what an error leaves
 * behind (ap-creation.md B.5), so only a later Linux online of that CPU clears it.
 */
static void snpsim_page_referenced(struct snpsim_page *p, u32 apic)
{
	int cpu = snpsim_apic_to_cpu(apic);

	p->ref_stamp = snpsim_stamp_next();
	if (cpu < 0)
		p->ref_unknown = true;
	else
		cpumask_set_cpu(cpu, p->suspects);
}

/* Referenced pages whose GPA matches @info2 (page frame, C-bit ignored). */
void snpsim_pages_referenced_by(u64 info2, u32 apic)
{
	struct snpsim_page *p;
	u64 frame = info2 & PAGE_MASK & ~sme_me_mask;

	list_for_each_entry(p, &snpsim_pages, node) {
		if (p->pa == frame)
			snpsim_page_referenced(p, apic);
	}
}

/* No AP can reach @p: every CPU it was handed to has been brought online by Linux since. */
static bool snpsim_page_unreachable(const struct snpsim_page *p)
{
	unsigned int cpu;

	if (p->ref_unknown)
		return false;
	for_each_cpu(cpu, p->suspects) {
		if (!cpu_online(cpu) || snpsim_cpu_online_stamp(cpu) <= p->ref_stamp)
			return false;
	}
	return true;
}

/* RMPADJUST-clears the VMSA bit over the whole block after 2 MiB adjustments. */
static u32 snpsim_clear_2m(struct snpsim_page *p)
{
	unsigned long va = (unsigned long)p->va;
	unsigned int i;
	u32 eax;

	eax = snpsim_rmpadjust(va, 1, SNPSIM_RMPADJUST_CLEAR);
	if (eax != SNPSIM_RMP_FAIL_SIZEMISMATCH)
		return eax;
	/* The 2 MiB entry was smashed into 4 KiB ones, each may carry the VMSA bit. */
	for (i = 0; i < (1U << p->order); i++) {
		eax = snpsim_rmpadjust(va + i * PAGE_SIZE, 0, SNPSIM_RMPADJUST_CLEAR);
		if (eax)
			return eax;
	}
	return 0;
}

/*
 * Returns @p to the kernel if that is safe: private and validated again, VMSA bit cleared with
 * RMPADJUST (RDX 0x1), then freed. @eax is that RMPADJUST's status. On success @p is gone.
 * Never frees a page whose VMSA bit could not be cleared (Linux: "leaking page").
 */
static struct snpsim_result snpsim_page_return(struct snpsim_page *p, u64 *eax, bool *freed)
{
	unsigned long va = (unsigned long)p->va;
	unsigned int i;
	bool cf;
	u32 rc;
	int err;

	*freed = false;
	*eax = 0;
	if (p->leak)
		return snpsim_fail(EIO, SNPSIM_R_KEPT);
	if (!snpsim_page_unreachable(p))
		return snpsim_refuse(SNPSIM_ST_BUSY, SNPSIM_R_AP_MAY_RUN);

	if (p->shared) {
		err = set_memory_encrypted(va, 1);
		if (err) {
			p->leak = true;
			pr_warn("set_memory_encrypted(%pa) failed (%d), leaking the page\n", &p->pa, err);
			return snpsim_fail(-err, SNPSIM_R_KEPT);
		}
		p->shared = false;
	}
	if (p->rescinded) {
		/* Validate every page that may have been rescinded; CF=1 means it already was. */
		for (i = 0; i < (1U << p->order); i++) {
			rc = snpsim_pvalidate(va + i * PAGE_SIZE, 0, 1, &cf);
			if (rc)
				return snpsim_fail(EIO, SNPSIM_R_KEPT);
		}
		p->rescinded = false;
		p->unvalidated = false;
	}
	if (p->adjusted_2m) {
		rc = snpsim_clear_2m(p);
		if (rc) {
			*eax = rc;
			return snpsim_ok();
		}
		p->adjusted_2m = false;
	}
	rc = snpsim_rmpadjust(va, 0, SNPSIM_RMPADJUST_CLEAR);
	*eax = rc;
	if (rc)
		return snpsim_ok();

	if (p->stub_va)
		free_page((unsigned long)p->stub_va);
	__free_pages(p->block, p->order);
	snpsim_page_destroy(p);
	*freed = true;
	return snpsim_ok();
}

/*
 * vmsa-free. Busy (an AP may run it) leaves the handle in place; any other outcome releases the
 * handle, and a page that was not freed is kept and retried later (snpsim_kept_reap).
 */
struct snpsim_result snpsim_page_free(struct snpsim_page *p, u64 *eax, u64 *freed)
{
	struct snpsim_result res;
	bool done;

	res = snpsim_page_return(p, eax, &done);
	*freed = done;
	if (res.status != SNPSIM_ST_BUSY && !done)
		p->kept = true;
	return res;
}

/* The owning session is closing: free @p now, or keep it for later. */
void snpsim_page_release(struct snpsim_page *p)
{
	u64 eax;
	bool done;

	snpsim_page_return(p, &eax, &done);
	if (!done)
		p->kept = true;
}

/* Retries kept pages; @final (module unload) forgets the ones still unsafe, leaking them. */
void snpsim_kept_reap(bool final)
{
	struct snpsim_page *p, *next;
	u64 eax;
	bool done;

	list_for_each_entry_safe(p, next, &snpsim_pages, node) {
		if (!p->kept)
			continue;
		snpsim_page_return(p, &eax, &done);
		if (done || !final)
			continue;
		pr_warn("leaking VMSA page %pa (%s)\n", &p->pa,
			p->leak ? "page state unknown" :
			!snpsim_page_unreachable(p) ? "an AP may still run it" :
			"its VMSA bit or validation could not be restored");
		snpsim_page_destroy(p);
	}
}
