/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Raw SEV-SNP guest instructions and GHCB MSR access.
 *
 * Emitted as bytes so that any binutils assembles them. The kernel's own rmpadjust()/pvalidate()
 * (asm/sev.h) are not used: pvalidate() folds rFLAGS.CF=1 into the software code 255
 * (PVALIDATE_FAIL_NOUPDATE) and loses EAX, and the harness reports both.
 */
#ifndef SNPSIM_INSN_H
#define SNPSIM_INSN_H

#include <linux/types.h>
#include <asm/asm.h>
#include <asm/msr.h>

/*
 * RMPADJUST: RAX = guest VA, RCX = page size (0 4 KiB, 1 2 MiB), RDX = attributes
 * (7:0 target VMPL, 15:8 permissions, 16 VMSA); status in EAX.
 * Encoding F3 0F 01 FE ([LX] arch/x86/include/asm/sev.h rmpadjust(); [APM] vol. 3 RMPADJUST).
 */
static __always_inline u32 snpsim_rmpadjust(unsigned long va, u64 size, u64 rdx)
{
	u32 eax;

	asm volatile(".byte 0xf3, 0x0f, 0x01, 0xfe"
		     : "=a"(eax)
		     : "a"(va), "c"(size), "d"(rdx)
		     : "memory", "cc");
	return eax;
}

/*
 * PVALIDATE: RAX = guest VA, RCX = page size, RDX = 1 validate / 0 rescind; status in EAX,
 * rFLAGS.CF = 1 when the Validated bit already had the requested value.
 * Encoding F2 0F 01 FF ([LX] arch/x86/include/asm/sev.h pvalidate(); [APM] vol. 3 PVALIDATE).
 */
static __always_inline u32 snpsim_pvalidate(unsigned long va, u64 size, u64 validate, bool *cf)
{
	bool carry;
	u32 eax;

	asm volatile(".byte 0xf2, 0x0f, 0x01, 0xff\n\t"
		     CC_SET(c)
		     : CC_OUT(c) (carry), "=a"(eax)
		     : "a"(va), "c"(size), "d"(validate)
		     : "memory", "cc");
	*cf = carry;
	return eax;
}

/*
 * VMGEXIT = REP VMMCALL, F3 0F 01 D9 ([LX] asm/sev.h VMGEXIT()). Unlike the kernel macro this one
 * clobbers memory: the compiler must not sink GHCB stores below it or hoist loads above it.
 */
static __always_inline void snpsim_vmgexit(void)
{
	asm volatile(".byte 0xf3, 0x0f, 0x01, 0xd9" ::: "memory");
}

/*
 * The GHCB MSR (MSR_AMD64_SEV_ES_GHCB, 0xC0010130, [LX] msr-index.h) is never intercepted for an
 * SEV-ES/SNP guest, so these raise no #VC. __rdmsr/__wrmsr are the untraced primitives: no
 * tracepoint or paravirt call runs inside the GHCB window.
 */
static __always_inline u64 snpsim_rd_ghcb_msr(void)
{
	return __rdmsr(MSR_AMD64_SEV_ES_GHCB);
}

static __always_inline void snpsim_wr_ghcb_msr(u64 val)
{
	__wrmsr(MSR_AMD64_SEV_ES_GHCB, (u32)val, (u32)(val >> 32));
}

#endif /* SNPSIM_INSN_H */
