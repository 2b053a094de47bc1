/**
 * The part of KVM's in-kernel local APIC that AP Creation interacts with ([LX] arch/x86/kvm/lapic.c):
 * INIT/SIPI latching (`__apic_accept_irq`, `pending_events`), the software-enable bit of the SVR that
 * an INIT-style reset clears (`kvm_lapic_reset`: SVR := 0xFF), fixed interrupts dropped while the
 * APIC is software-disabled, and PV-kick (APIC_DM_REMRD) delivery.
 *
 * Choices where the reference is silent (ap-creation.md G.8): a PV kick reaches a software-disabled
 * APIC (the REMRD case of `__apic_accept_irq` has no `apic_enabled` check and the physical APIC map
 * only needs the hardware-enable bit); a pending fixed interrupt is taken to be deliverable (the host
 * cannot see an SEV-ES guest's RFLAGS.IF; the model assumes IF=1).
 */

/** APIC_SPIV_APIC_ENABLED = bit 8 of the SVR [LX] arch/x86/include/asm/apicdef.h */
export const APIC_SPIV_APIC_ENABLED = 0x100;
/** SVR value after reset: 0xFF (vector 0xFF, software-disabled) [LX] kvm_lapic_reset */
export const APIC_SVR_RESET = 0xff;

export class Lapic {
  /** Spurious-interrupt vector register; bit 8 = software enabled. */
  svr = APIC_SVR_RESET;
  /** Fixed-interrupt vectors pending in the IRR. */
  readonly irr = new Set<number>();
  /** KVM_APIC_INIT / KVM_APIC_SIPI bits of `apic->pending_events`. */
  pendingInit = false;
  pendingSipi = false;
  sipiVector = 0;

  get softwareEnabled(): boolean {
    return (this.svr & APIC_SPIV_APIC_ENABLED) !== 0;
  }

  /**
   * The guest writes the SVR (Linux enables its APIC during CPU bring-up); bits 9:0 are writable
   * (`mask = 0x3ff` in kvm_lapic_reg_write APIC_SPIV, without directed EOI) [LX] arch/x86/kvm/lapic.c
   */
  writeSvr(value: number): void {
    this.svr = value & 0x3ff;
  }

  /**
   * `kvm_lapic_reset` (INIT or RESET): SVR := 0xFF (software-disabled), IRR/ISR cleared. APIC base
   * and APIC ID are kept on INIT.
   */
  reset(): void {
    this.svr = APIC_SVR_RESET;
    this.irr.clear();
  }

  /** APIC_DM_INIT: `pending_events = KVM_APIC_INIT` (a latched SIPI is dropped). */
  acceptInit(): void {
    this.pendingInit = true;
    this.pendingSipi = false;
  }

  /** APIC_DM_STARTUP: remember the vector, latch the SIPI. */
  acceptSipi(vector: number): void {
    this.sipiVector = vector & 0xff;
    this.pendingSipi = true;
  }

  /** APIC_DM_FIXED: dropped while software-disabled. Returns whether it was accepted. */
  acceptFixed(vector: number): boolean {
    if (!this.softwareEnabled) return false;
    this.irr.add(vector & 0xff);
    return true;
  }

  get hasPendingInitOrSipi(): boolean {
    return this.pendingInit || this.pendingSipi;
  }
}
