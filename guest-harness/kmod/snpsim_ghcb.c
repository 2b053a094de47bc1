// SPDX-License-Identifier: GPL-2.0-only
/*
 * Talking to the hypervisor: the GHCB MSR protocol and raw NAE events.
 *
 * GHCB strategy (README.md "GHCB strategy and the NMI window"): a raw NAE event goes through the
 * kernel's own per-CPU GHCB, the page whose GPA this CPU registered with the hypervisor (GHCB MSR
 * protocol 0x012/0x013) at bring-up (landscape.md section 5.3, option 3). Linux's accessors
 * (__sev_get_ghcb) are not exported, so the module finds the page through the GHCB MSR, which holds
 * its GPA after the kernel's last full-protocol exit on this CPU (or the 0x013 registration
 * response carrying the same GFN), and uses it with interrupts off and preemption disabled.
 *
 * Why not a page of our own (option 2)? Every NMI in an SEV-ES/SNP guest starts with an NMI_COMPLETE
 * VMGEXIT that writes the kernel's GHCB GPA to the MSR and uses that page
 * ([LX] arch/x86/coco/sev/core.c __sev_es_nmi_complete). With our page registered instead, that
 * exit names an unregistered GHCB and KVM stops the VM (-EINVAL from KVM_RUN before 2026,
 * ap-creation.md A.1). With the kernel's page, an NMI in the window can only overwrite our fields:
 * its __sev_get_ghcb() sees ghcb_active == false (no kernel user holds the page in process context
 * with interrupts off), fills the page, exits, and invalidates it (sw_exit_code = 0, valid bitmap
 * cleared). The VM survives; our request may be lost or our results overwritten.
 *
 * Detection: x86 counts every NMI taken by an online CPU in irq_stat.__nmi_count; exc_nmi issues
 * NMI_COMPLETE first and increments the count right after ([LX] arch/x86/kernel/nmi.c), and the
 * handler runs to completion before the interrupted code resumes. The count is read before the
 * first store to the GHCB and after the last load from it; if it moved, the outcome is unknown and
 * the request is answered "failed errno=EAGAIN reason=nmi-in-window", never retried (the
 * hypervisor may have acted on it).
 * MSR-protocol requests are idempotent queries and are retried.
 *
 * Nothing inside the window can raise #VC itself: the GHCB MSR is never intercepted, the GHCB page
 * is shared memory, and no function is called between the first store and the last load.
 *
 * Residual risk: (1) a machine check whose handler raises a #VC inside the window uses the page as
 * an NMI would but is not counted, so its clobber would go unnoticed (#MC in a guest is rare and
 * fatal anyway); (2) a future kernel that holds its GHCB across process context with interrupts
 * off would break the "ghcb_active is false here" premise.
 */
#define pr_fmt(fmt) "snpsim: " fmt

#include <linux/build_bug.h>
#include <linux/errno.h>
#include <linux/irqflags.h>
#include <linux/mm.h>
#include <linux/preempt.h>
#include <asm/hardirq.h>
#include <asm/pgtable.h>
#include <asm/sev.h>
#include <asm/sev-common.h>
#include <asm/svm.h>

#include "snpsim.h"
#include "snpsim_insn.h"

/* GHCB layout ([LX] arch/x86/include/asm/svm.h struct ghcb; ap-creation.md A.1). */
static_assert(offsetof(struct ghcb, save.rax) == 0x1f8);
static_assert(offsetof(struct ghcb, save.sw_exit_code) == 0x390);
static_assert(offsetof(struct ghcb, save.sw_exit_info_1) == 0x398);
static_assert(offsetof(struct ghcb, save.sw_exit_info_2) == 0x3a0);
static_assert(offsetof(struct ghcb, save.valid_bitmap) == 0x3f0);
static_assert(offsetof(struct ghcb, protocol_version) == 0xffa);
static_assert(offsetof(struct ghcb, ghcb_usage) == 0xffc);
/* Valid-bitmap bit = offset / 8: rax 63, sw_exit_code 114, info1 115, info2 116. */
static_assert(GHCB_BITMAP_IDX(rax) == 63);
static_assert(GHCB_BITMAP_IDX(sw_exit_code) == 114);
static_assert(GHCB_BITMAP_IDX(sw_exit_info_1) == 115);
static_assert(GHCB_BITMAP_IDX(sw_exit_info_2) == 116);
static_assert(MSR_AMD64_SEV_ES_GHCB == 0xc0010130);

/* An MSR-protocol query disturbed by an NMI is repeated at most this often. */
#define SNPSIM_MSR_PROTOCOL_TRIES 8

static __always_inline unsigned int snpsim_nmi_count(void)
{
	return this_cpu_read(irq_stat.__nmi_count);
}

/*
 * Sends one GHCB MSR protocol request ([LX] sev-common.h GHCB_MSR_*) and restores the MSR.
 * Returns 0 with the raw response, -EPROTO with the raw response when its GHCBInfo is not
 * response_code, or -EAGAIN when NMIs kept interrupting the exchange.
 */
int snpsim_msr_protocol(u64 request, u64 response_code, u64 *response)
{
	unsigned int tries, before, after;
	unsigned long flags;
	u64 saved, val;

	for (tries = 0; tries < SNPSIM_MSR_PROTOCOL_TRIES; tries++) {
		local_irq_save(flags);
		before = snpsim_nmi_count();
		saved = snpsim_rd_ghcb_msr();
		snpsim_wr_ghcb_msr(request);
		snpsim_vmgexit();
		val = snpsim_rd_ghcb_msr();
		snpsim_wr_ghcb_msr(saved);
		after = snpsim_nmi_count();
		local_irq_restore(flags);

		/*
		 * An NMI in between wrote the kernel GHCB GPA to the MSR for its NMI_COMPLETE; our
		 * VMGEXIT then became a full-protocol exit on an invalidated GHCB, which KVM answers
		 * with (2, GHCB_ERR_MISSING_INPUT) without acting. Ask again.
		 */
		if (before != after)
			continue;
		*response = val;
		return GHCB_RESP_CODE(val) == response_code ? 0 : -EPROTO;
	}
	return -EAGAIN;
}

/*
 * The kernel's GHCB for this CPU, from the GHCB MSR value: a GHCB GPA (GHCBInfo 0) or the
 * registration response 0x013 with the registered GFN in GHCBData ([LX] sev-common.h
 * GHCB_MSR_REG_GPA_RESP). The page must be RAM mapped shared (no C-bit) in the direct map, as the
 * kernel maps its GHCBs; anything else is refused rather than written to.
 */
static struct ghcb *snpsim_kernel_ghcb(u64 msr, u64 *gpa)
{
	unsigned int level;
	unsigned long va;
	pte_t *pte;

	switch (GHCB_RESP_CODE(msr)) {
	case 0:
	case GHCB_MSR_REG_GPA_RESP:
		*gpa = msr & ~GHCB_MSR_INFO_MASK;
		break;
	default:
		return NULL;
	}
	if (!*gpa || !pfn_valid(PHYS_PFN(*gpa)))
		return NULL;
	va = (unsigned long)__va(*gpa);
	pte = lookup_address(va, &level);
	if (!pte || !pte_present(*pte) || (pte_val(*pte) & _PAGE_ENC))
		return NULL;
	return (struct ghcb *)va;
}

/* As the kernel's vc_ghcb_invalidate() (static in sev-shared.c): what __sev_put_ghcb leaves. */
static __always_inline void snpsim_ghcb_invalidate(struct ghcb *ghcb)
{
	ghcb->save.sw_exit_code = 0;
	__builtin_memset(ghcb->save.valid_bitmap, 0, sizeof(ghcb->save.valid_bitmap));
}

/*
 * Issues one NAE event with exactly the fields and valid bits of @in, through the kernel's
 * registered GHCB of the current CPU, and returns SW_EXITINFO1/2 as the hypervisor left them.
 */
struct snpsim_result snpsim_nae_call(const struct snpsim_nae *in, u64 *info1, u64 *info2)
{
	unsigned long *bitmap;
	unsigned int before, after;
	unsigned long flags;
	struct ghcb *ghcb;
	u64 msr, gpa;

	preempt_disable();
	local_irq_save(flags);

	msr = snpsim_rd_ghcb_msr();
	ghcb = snpsim_kernel_ghcb(msr, &gpa);
	if (!ghcb) {
		local_irq_restore(flags);
		preempt_enable();
		return snpsim_fail(EAGAIN, SNPSIM_R_GHCB);
	}

	before = snpsim_nmi_count();

	snpsim_ghcb_invalidate(ghcb);
	ghcb->protocol_version = snpsim_platform.ghcb_version;
	ghcb->ghcb_usage = GHCB_DEFAULT_USAGE;
	ghcb->save.sw_exit_code = in->exit_code;
	ghcb->save.sw_exit_info_1 = in->info1;
	ghcb->save.sw_exit_info_2 = in->info2;
	ghcb->save.rax = in->rax;
	bitmap = (unsigned long *)ghcb->save.valid_bitmap;
	if (in->valid & SNPSIM_VALID_EXIT_CODE)
		__set_bit(GHCB_BITMAP_IDX(sw_exit_code), bitmap);
	if (in->valid & SNPSIM_VALID_INFO1)
		__set_bit(GHCB_BITMAP_IDX(sw_exit_info_1), bitmap);
	if (in->valid & SNPSIM_VALID_INFO2)
		__set_bit(GHCB_BITMAP_IDX(sw_exit_info_2), bitmap);
	if (in->valid & SNPSIM_VALID_RAX)
		__set_bit(GHCB_BITMAP_IDX(rax), bitmap);

	/* The kernel writes the GPA before every exit too (sev_es_ghcb_hv_call). */
	snpsim_wr_ghcb_msr(gpa);
	snpsim_vmgexit();

	*info1 = READ_ONCE(ghcb->save.sw_exit_info_1);
	*info2 = READ_ONCE(ghcb->save.sw_exit_info_2);

	snpsim_ghcb_invalidate(ghcb);
	snpsim_wr_ghcb_msr(msr);
	after = snpsim_nmi_count();

	local_irq_restore(flags);
	preempt_enable();

	if (before != after)
		return snpsim_fail(EAGAIN, SNPSIM_R_NMI);
	return snpsim_ok();
}
