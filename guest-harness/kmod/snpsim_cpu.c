// SPDX-License-Identifier: GPL-2.0-only
/*
 * CPUs: APIC IDs, INIT-SIPI, the KVM PV kick, and CPU-online stamps.
 *
 * Online stamps make "an AP may still run this VMSA" decidable: every time Linux brings a CPU
 * online (for SNP, with a fresh AP Creation CREATE of its own VMSA, [LX] wakeup_cpu_via_vmgexit),
 * a hotplug callback on that CPU stamps it from a global counter. A module VMSA handed to that CPU
 * at stamp S is no longer reachable once the CPU's online stamp is greater than S and the CPU is
 * online: Linux's CREATE replaced it.
 */
#define pr_fmt(fmt) "snpsim: " fmt

#include <linux/atomic.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/delay.h>
#include <linux/irqflags.h>
#include <linux/kvm_para.h>
#include <linux/percpu.h>
#include <asm/apic.h>
#include <asm/kvm_para.h>
#include <asm/smp.h>

#include "snpsim.h"

static_assert(KVM_HC_KICK_CPU == 5);	/* [LX] include/uapi/linux/kvm_para.h */

static DEFINE_PER_CPU(u64, snpsim_online_stamp);
static atomic64_t snpsim_stamp = ATOMIC64_INIT(0);
static int snpsim_hp_state = -1;

/* xAPIC ICR delivery-status polling bound (x2APIC has no busy bit). */
#define SNPSIM_ICR_IDLE_POLL_US 1000

u64 snpsim_stamp_next(void)
{
	return atomic64_inc_return(&snpsim_stamp);
}

u64 snpsim_cpu_online_stamp(unsigned int cpu)
{
	return READ_ONCE(per_cpu(snpsim_online_stamp, cpu));
}

static int snpsim_cpu_online(unsigned int cpu)
{
	WRITE_ONCE(per_cpu(snpsim_online_stamp, cpu), snpsim_stamp_next());
	return 0;
}

int snpsim_cpu_init(void)
{
	int ret;

	/* nocalls: CPUs online at load were not handed a module VMSA, stamp 0 is correct. */
	ret = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, "snpsim/guest:online",
					snpsim_cpu_online, NULL);
	if (ret < 0)
		return ret;
	snpsim_hp_state = ret;
	return 0;
}

void snpsim_cpu_exit(void)
{
	if (snpsim_hp_state >= 0)
		cpuhp_remove_state_nocalls(snpsim_hp_state);
}

/* The Linux CPU whose APIC ID is @apic, as wakeup_cpu_via_vmgexit() looks it up; -1 if none. */
int snpsim_apic_to_cpu(u32 apic)
{
	unsigned int cpu;

	for_each_present_cpu(cpu) {
		if (cpu_physical_id(cpu) == apic)
			return cpu;
	}
	return -1;
}

struct snpsim_result snpsim_cpu_apic(u64 cpu, u64 *apic_id)
{
	if (cpu >= nr_cpu_ids || !cpu_present(cpu))
		return snpsim_fail(ENOENT, SNPSIM_R_ARG);
	*apic_id = cpu_physical_id(cpu);
	return snpsim_ok();
}

static void snpsim_icr_wait_idle(void)
{
	unsigned int us;

	if (x2apic_mode)
		return;
	for (us = 0; us < SNPSIM_ICR_IDLE_POLL_US; us++) {
		if (!(apic->read(APIC_ICR) & APIC_ICR_BUSY))
			return;
		udelay(1);
	}
}

/*
 * INIT (assert, then the level de-assert Linux also sends, [LX] arch/x86/kernel/smpboot.c
 * wakeup_secondary_cpu_via_init) followed by exactly one STARTUP IPI with @vector. One SIPI, not
 * Linux's two: for SEV-ES/SNP, KVM treats a second SIPI as the end of an AP Reset Hold
 * (ap-creation.md B.1), which is a different experiment.
 */
struct snpsim_result snpsim_init_sipi(u64 apic_id, u64 vector)
{
	unsigned long flags;

	if (apic_id > U32_MAX || vector > 0xff)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	/* xAPIC destinations are 8 bits ([APM] vol. 2 16.5 ICR[63:56]). */
	if (!x2apic_mode && apic_id > 0xff)
		return snpsim_fail(EINVAL, SNPSIM_R_ARG);

	/* xAPIC ICR writes are two register writes: no IPI of ours may interleave. */
	local_irq_save(flags);
	apic->icr_write(APIC_INT_LEVELTRIG | APIC_INT_ASSERT | APIC_DM_INIT, (u32)apic_id);
	snpsim_icr_wait_idle();
	apic->icr_write(APIC_INT_LEVELTRIG | APIC_DM_INIT, (u32)apic_id);
	snpsim_icr_wait_idle();
	apic->icr_write(APIC_DM_STARTUP | (u32)vector, (u32)apic_id);
	snpsim_icr_wait_idle();
	local_irq_restore(flags);
	return snpsim_ok();
}

/*
 * KVM_HC_KICK_CPU (5) with flags 0, as Linux's kvm_kick_cpu(): VMMCALL, which the kernel's #VC
 * handler forwards through its GHCB ([LX] arch/x86/kernel/kvm.c; ap-creation.md E).
 */
struct snpsim_result snpsim_pv_kick(u64 apic_id, u64 *ret)
{
	if (apic_id > U32_MAX)
		return snpsim_refuse(SNPSIM_ST_BAD_REQUEST, SNPSIM_R_ARG);
	if (!kvm_para_available())
		return snpsim_refuse(SNPSIM_ST_UNSUPPORTED, SNPSIM_R_NOT_KVM);
	*ret = (u64)kvm_hypercall2(KVM_HC_KICK_CPU, 0, (unsigned long)apic_id);
	return snpsim_ok();
}
