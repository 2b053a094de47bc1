/**
 * The platform state the firmware depends on: the RMP's own place in memory (RMP_BASE / RMP_END),
 * the per-CPU MSRs SNP_INIT checks (each INVALID_CONFIG reached), WBINVD on all CPUs as the firmware
 * sees it, and SNP_SHUTDOWN_EX's X86_SNP_SHUTDOWN clearing SNP_EN.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  AccessKind,
  createSnpSystem,
  HWCR_SMM_LOCK,
  LINUX_SNP_SYSCFG,
  Msr,
  makeRmpEntry,
  PageState,
  Platform,
  RMP_BOOKKEEPING_SIZE,
  rmpAtTopOfMemory,
  rmpTableBytes,
  SevStatus,
  type SnpSystemOptions,
  Syscfg,
  sevStatusName,
  VmrunFailure,
} from '../../psp-firmware/index.js';

const MiB = 2 ** 20;
const GiB = 2 ** 30;

function expectStatus(
  fw: { lastError: { reason: string } | null },
  got: number,
  want: number,
  reason?: RegExp,
): void {
  assert.equal(
    got,
    want,
    `expected ${sevStatusName(want)}, got ${sevStatusName(got)}: ${fw.lastError?.reason}`,
  );
  if (reason) assert.match(fw.lastError?.reason ?? '', reason);
}

describe('RMP placement (RMP_BASE / RMP_END)', () => {
  it('default: at the top of memory, 1 MiB aligned, a whole number of MiB, covering all memory', () => {
    assert.deepEqual(rmpAtTopOfMemory(64 * MiB), { rmpBase: 63 * MiB, coveredBytes: 252 * MiB });
    assert.equal(rmpTableBytes(252 * MiB), MiB);
    // 4 GiB: 17 MiB of RMP cover 17 × 256 − 4 MiB.
    const big = rmpAtTopOfMemory(4 * GiB);
    assert.deepEqual(big, { rmpBase: 4 * GiB - 17 * MiB, coveredBytes: (17 * 256 - 4) * MiB });
    assert.equal(rmpTableBytes(big.coveredBytes), 17 * MiB);
    assert.throws(() => rmpAtTopOfMemory(512 * 1024), /cannot hold a 1 MiB RMP/);
    assert.throws(() => rmpAtTopOfMemory(1000), /multiple of 4096/);
  });

  it('createSnpSystem places it; RDMSR reads it; SNP_INIT makes it Firmware and the pages past memory HV-Fixed', () => {
    const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
    assert.equal(platform.rmpBase, 63 * MiB);
    assert.equal(platform.rmpEnd, 64 * MiB - 1);
    assert.equal(platform.rdmsr(2, Msr.RMP_BASE), BigInt(63 * MiB));
    assert.equal(platform.rdmsr(0, Msr.RMP_END), BigInt(64 * MiB - 1));
    assert.equal(platform.rmp.coveredBytes, 252 * MiB);
    assert.equal(platform.rmp.tableBytes, MiB);
    for (const pa of [63 * MiB, 64 * MiB - 4096]) {
      assert.equal(platform.rmp.pageState(pa / 4096), PageState.FIRMWARE);
      assert.equal(platform.rmp.entry(pa / 4096)?.lock, true);
    }
    assert.equal(platform.rmp.pageState((63 * MiB) / 4096 - 1), PageState.HYPERVISOR);
    assert.equal(platform.rmp.pageState((64 * MiB) / 4096), PageState.HV_FIXED, 'covered, beyond memory');
    assert.equal(platform.rmp.pageState((252 * MiB) / 4096), PageState.DEFAULT, 'beyond RMP_END');
    assert.deepEqual(platform.rmp.verifyCounters(), []);
    // A command address inside the RMP is INVALID_PARAM [FW get_rmp_paddr].
    expectStatus(firmware, firmware.gctxCreate(63 * MiB + 0x5000), SevStatus.INVALID_PARAM, /inside the RMP/);
    expectStatus(firmware, firmware.pageReclaim(64 * MiB - 4096), SevStatus.INVALID_PARAM, /inside the RMP/);
    // The host cannot write the RMP's pages once SNP_INIT made them Firmware.
    assert.notEqual(platform.hostAccess(63 * MiB, AccessKind.WRITE), 0);
  });

  it('an explicit coveredBytes means no placement (RMP outside memory) unless asked for', () => {
    const none = createSnpSystem({ memoryBytes: 64 * MiB, coveredBytes: 32 * MiB, init: true });
    assert.equal(none.platform.rmpBase, undefined);
    assert.equal(none.platform.rmp.coveredBytes, 32 * MiB);
    const at = createSnpSystem({ memoryBytes: 64 * MiB, coveredBytes: 252 * MiB, rmpPlacement: 8 * MiB });
    assert.equal(at.platform.rmpEnd, 9 * MiB - 1);
    expectStatus(at.firmware, at.firmware.snpInit(), SevStatus.SUCCESS);
    assert.equal(at.platform.rmp.pageState((8 * MiB) / 4096), PageState.FIRMWARE);
  });

  it('Platform refuses a placement the hardware cannot have (RangeError naming it)', () => {
    assert.throws(() => new Platform({ memoryBytes: 64 * MiB, rmpBase: 0x1000 }), /multiple of 8 KiB/);
    assert.throws(
      () => new Platform({ memoryBytes: 64 * MiB, rmpBase: 0, coveredBytes: 3 * MiB }),
      /multiple of 2 MiB/,
    );
    assert.throws(() => new Platform({ memoryBytes: 64 * MiB, rmpBase: 64 * MiB - 0x2000 }), /does not fit/);
    assert.throws(
      () => new Platform({ memoryBytes: 64 * MiB, coveredBytes: 128 * MiB }),
      /exceeds memoryBytes/,
    );
    const p = new Platform({ memoryBytes: 64 * MiB, rmpBase: 0x2000, coveredBytes: 64 * MiB });
    assert.equal(p.rmpEnd, 0x2000 + RMP_BOOKKEEPING_SIZE + 16 * 16384 - 1);
  });
});

describe('SNP_INIT: the platform configuration checks (INVALID_CONFIG, firmware order)', () => {
  /** An uninitialised 64 MiB system with the default RMP placement. */
  const bare = (over: Partial<SnpSystemOptions> = {}) => createSnpSystem({ memoryBytes: 64 * MiB, ...over });

  it('Linux defaults pass; each SYSCFG bit SNP needs on every core', () => {
    const ok = bare();
    expectStatus(ok.firmware, ok.firmware.snpInit(), SevStatus.SUCCESS);
    for (const [bit, name] of [
      [Syscfg.MEM_ENCRYPT, /MemEncryptionModEn \(SME\) is clear on CPU 2/],
      [Syscfg.SNP_EN, /SNP_EN is clear on CPU 2/],
      [Syscfg.VMPL_EN, /VMPL_EN is clear on CPU 2/],
    ] as const) {
      const s = bare({ msrs: { syscfg: LINUX_SNP_SYSCFG & ~Syscfg.SNP_EN } });
      for (let cpu = 0; cpu < 4; cpu++) {
        const v = cpu === 2 ? LINUX_SNP_SYSCFG & ~bit : LINUX_SNP_SYSCFG;
        assert.equal(s.platform.wrmsr(cpu, Msr.SYSCFG, v).kind, 'ok');
      }
      expectStatus(s.firmware, s.firmware.snpInit(), SevStatus.INVALID_CONFIG, name);
      expectStatus(s.firmware, s.firmware.snpInitEx({ initRmp: true }), SevStatus.INVALID_CONFIG, name);
      assert.equal(s.firmware.snpState, 0, 'still UNINIT');
    }
  });

  it('SYSCFG identical on every core, with MFDM', () => {
    const s = bare({ msrs: { syscfg: 0n } });
    for (let cpu = 0; cpu < 4; cpu++) {
      s.platform.wrmsr(cpu, Msr.SYSCFG, LINUX_SNP_SYSCFG | (cpu === 3 ? 1n << 18n : 0n));
    }
    expectStatus(
      s.firmware,
      s.firmware.snpInit(),
      SevStatus.INVALID_CONFIG,
      /SYSCFG differs.*CPU 3 0x38c0000/,
    );
    const noMfdm = bare({ msrs: { syscfg: LINUX_SNP_SYSCFG & ~Syscfg.MFDM } });
    expectStatus(noMfdm.firmware, noMfdm.firmware.snpInit(), SevStatus.INVALID_CONFIG, /MFDM/);
  });

  it('HWCR identical on every core, with SmmLock', () => {
    const s = bare();
    assert.equal(s.platform.wrmsr(1, Msr.HWCR, HWCR_SMM_LOCK | 0x8n).kind, 'ok');
    expectStatus(s.firmware, s.firmware.snpInit(), SevStatus.INVALID_CONFIG, /HWCR differs.*CPU 1 0x9/);
    const unlocked = bare({ msrs: { hwcr: 0n } });
    expectStatus(unlocked.firmware, unlocked.firmware.snpInit(), SevStatus.INVALID_CONFIG, /SmmLock/);
  });

  it('RMP_BASE 1 MiB aligned and the RMP a whole number of MiB (Genoa firmware)', () => {
    const misaligned = bare({ coveredBytes: 252 * MiB, rmpPlacement: 8 * MiB + 0x2000 });
    expectStatus(
      misaligned.firmware,
      misaligned.firmware.snpInit(),
      SevStatus.INVALID_CONFIG,
      /RMP_BASE 0x802000/,
    );
    const odd = bare({ coveredBytes: 64 * MiB, rmpPlacement: 8 * MiB });
    expectStatus(odd.firmware, odd.firmware.snpInit(), SevStatus.INVALID_CONFIG, /multiple of 1 MiB/);
  });

  it('VM_HSAVE_PA 0 on every core when the RMP is initialised (not when INIT_EX reuses it)', () => {
    const s = bare();
    assert.equal(s.platform.wrmsr(3, Msr.VM_HSAVE_PA, 0x5000n).kind, 'ok');
    expectStatus(
      s.firmware,
      s.firmware.snpInitEx({ initRmp: true }),
      SevStatus.INVALID_CONFIG,
      /VM_HSAVE_PA is 0x5000 on CPU 3/,
    );
    s.platform.wrmsr(3, Msr.VM_HSAVE_PA, 0n);
    expectStatus(s.firmware, s.firmware.snpInitEx({ initRmp: true }), SevStatus.SUCCESS);
    s.platform.wbinvd();
    expectStatus(s.firmware, s.firmware.dfFlush(), SevStatus.SUCCESS);
    expectStatus(s.firmware, s.firmware.shutdown(), SevStatus.SUCCESS);
    s.platform.wrmsr(0, Msr.VM_HSAVE_PA, 0x7000n); // KVM loaded meanwhile
    expectStatus(s.firmware, s.firmware.snpInitEx({ initRmp: false }), SevStatus.SUCCESS);
  });

  it('createSnpSystem({ init }) clears VM_HSAVE_PA first, as Linux', () => {
    const s = createSnpSystem({ memoryBytes: 64 * MiB, msrs: { vmHsavePa: 0x9000n }, init: true });
    assert.equal(s.firmware.snpState, 1);
    assert.equal(s.platform.rdmsr(1, Msr.VM_HSAVE_PA), 0n);
  });
});

describe('MSR writes', () => {
  it('SYSCFG is ignored once SNP_EN is set; SmmLock sticks; VM_HSAVE_PA must be a page address', () => {
    const p = new Platform({ memoryBytes: 8 * MiB });
    const r = p.wrmsr(0, Msr.SYSCFG, 0n);
    assert.equal(r.kind, 'ignored');
    assert.equal(p.rdmsr(0, Msr.SYSCFG), LINUX_SNP_SYSCFG);
    assert.equal(p.wrmsr(0, Msr.HWCR, 0x10n).kind, 'ok');
    assert.equal(p.rdmsr(0, Msr.HWCR), 0x11n, 'SmmLock cannot be cleared');
    assert.equal(p.wrmsr(0, Msr.VM_HSAVE_PA, 0x1008n).kind, 'gp');
    assert.equal(p.wrmsr(0, Msr.VM_HSAVE_PA, 1n << 52n).kind, 'gp');
    assert.throws(() => p.rdmsr(4, Msr.SYSCFG), /CPU 4 does not exist/);
    assert.throws(() => p.rdmsr(0, 0xc0000080), /not modelled/);
    assert.throws(() => p.wrmsr(0, Msr.RMP_BASE, 0n), /fixed when the Platform is built/);
    assert.throws(() => p.wrmsr(0, Msr.SYSCFG, -1n), /u64/);
    assert.equal(new Platform({ memoryBytes: 8 * MiB, cpuCount: 64 }).msrs.cpuCount, 64);
    assert.throws(() => new Platform({ memoryBytes: 8 * MiB, cpuCount: 0 }), /cpuCount/);
  });
});

describe('WBINVD on all CPUs', () => {
  it('sets the WBINVD_DONE flags the firmware reads for SNP_DF_FLUSH', () => {
    const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB });
    expectStatus(firmware, firmware.snpInit(), SevStatus.SUCCESS);
    expectStatus(firmware, firmware.dfFlush(), SevStatus.WBINVD_REQUIRED);
    platform.wbinvd();
    expectStatus(firmware, firmware.dfFlush(), SevStatus.SUCCESS);
    assert.equal(firmware.asidState(1), 'clean');
  });
});

describe('SNP_SHUTDOWN_EX X86_SNP_SHUTDOWN', () => {
  it('clears SNP_EN on every CPU: SNP-active VMRUN and SNP_INIT fail until the host sets it again', () => {
    const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
    expectStatus(firmware, firmware.shutdownEx({ iommuSnpShutdown: true }), SevStatus.SUCCESS);
    assert.equal(platform.snpEnabled, true, 'IOMMU shutdown alone leaves SNP_EN');
    platform.wbinvd();
    expectStatus(firmware, firmware.snpInitEx({ initRmp: true }), SevStatus.SUCCESS);
    platform.wbinvd();
    expectStatus(firmware, firmware.dfFlush(), SevStatus.SUCCESS);
    expectStatus(
      firmware,
      firmware.shutdownEx({ iommuSnpShutdown: true, x86SnpShutdown: true }),
      SevStatus.SUCCESS,
    );
    assert.equal(platform.snpEnabled, false);
    for (let cpu = 0; cpu < 4; cpu++) assert.equal(platform.rdmsr(cpu, Msr.SYSCFG) & Syscfg.SNP_EN, 0n);
    // An SNP-active VMSA cannot run.
    const vmsa = 0x20_3000;
    const vmsaEntry = () =>
      platform.firmwareWrite(vmsa / 4096, makeRmpEntry({ assigned: true, asid: 1, gpa: 0x1000, vmsa: true }));
    vmsaEntry();
    platform.memory.writeU64(vmsa + 0xd0, 0x1000n);
    platform.memory.writeU64(vmsa + 0x3b0, 0x1n);
    const r = platform.vmrun({ cpu: 0, asid: 1, vmsaPa: vmsa, vmsaGpa: 0x1000 });
    assert.equal(r.kind === 'vmexit' && r.reason, VmrunFailure.SNP_NOT_ENABLED);
    expectStatus(
      firmware,
      firmware.snpInitEx({ initRmp: true }),
      SevStatus.INVALID_CONFIG,
      /SNP_EN is clear on CPU 0/,
    );
    // SNP_EN is clear, so the host's SYSCFG writes are accepted again.
    for (let cpu = 0; cpu < 4; cpu++)
      assert.equal(platform.wrmsr(cpu, Msr.SYSCFG, LINUX_SNP_SYSCFG).kind, 'ok');
    expectStatus(firmware, firmware.snpInitEx({ initRmp: true }), SevStatus.SUCCESS);
    vmsaEntry(); // SNP_INIT reinitialised the RMP
    assert.equal(platform.vmrun({ cpu: 0, asid: 1, vmsaPa: vmsa, vmsaGpa: 0x1000 }).kind, 'entered');
  });
});
