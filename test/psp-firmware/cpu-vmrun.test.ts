import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CPU_PROFILES,
  type CpuProfile,
  makeGuestContext,
  makeRmpEntry,
  Platform,
  RmpStatus,
  SevFeature,
  VmexitCode,
  VmrunFailure,
  type VmrunRequest,
  type VmrunResult,
} from '../../psp-firmware/index.js';

const MiB = 2 ** 20;
const VMSA = 0x123000; // sPA of the VMSA page (not 2 MB aligned)
const GPA = 0xfffffffff000; // KVM INITIAL_VMSA_GPA
const ASID = 4;

/** A Guest-Valid VMSA page (RMP.VMSA = 1) with EFER.SVME and SEV_FEATURES = `features`. */
function setup(features = 0x21n, profile: CpuProfile = CPU_PROFILES.genoa, snpEnabled = true): Platform {
  const p = new Platform({ memoryBytes: 16 * MiB, coveredBytes: 8 * MiB, profile, snpEnabled });
  p.firmwareWrite(
    VMSA / 4096,
    makeRmpEntry({ assigned: true, asid: ASID, gpa: GPA, validated: true, vmsa: true }),
  );
  p.memory.writeU64(VMSA + 0xd0, 0x1000n);
  p.memory.writeU64(VMSA + 0x3b0, features);
  return p;
}

const req = (over: Partial<VmrunRequest> = {}): VmrunRequest => ({
  cpu: 0,
  asid: ASID,
  vmsaPa: VMSA,
  vmsaGpa: GPA,
  ...over,
});

function reason(r: VmrunResult): string {
  if (r.kind === 'entered') return 'entered';
  assert.equal(r.kind === 'vmexit' ? r.exitCode : 0, r.kind === 'vmexit' ? VmexitCode.INVALID : 0);
  return r.reason;
}

test('VMRUN of an SNP-active VMSA: each check of Table 15-41 and the SEV_FEATURES checks', () => {
  const F = VmrunFailure;
  const entry = (fields: Parameters<typeof makeRmpEntry>[0]) => (p: Platform) =>
    p.firmwareWrite(
      VMSA / 4096,
      makeRmpEntry({ assigned: true, asid: ASID, gpa: GPA, validated: true, vmsa: true, ...fields }),
    );
  const cases: [string, (p: Platform) => void, Partial<VmrunRequest>, string][] = [
    ['valid VMSA', () => {}, {}, 'entered'],
    ['VMSA pointer not page aligned', () => {}, { vmsaPa: VMSA + 8 }, F.VMSA_ADDRESS_INVALID],
    ['VMSA pointer beyond memory', () => {}, { vmsaPa: 16 * MiB }, F.VMSA_ADDRESS_INVALID],
    ['EFER.SVME clear', (p) => p.memory.writeU64(VMSA + 0xd0, 0n), {}, F.EFER_SVME_CLEAR],
    [
      'Restricted + Alternate injection',
      (p) => p.memory.writeU64(VMSA + 0x3b0, 0x19n),
      {},
      F.INJECTION_MODES_BOTH,
    ],
    [
      'Alternate injection with AVIC',
      (p) => p.memory.writeU64(VMSA + 0x3b0, 0x11n),
      { avicEnabled: true },
      F.ALTERNATE_INJECTION_WITH_AVIC,
    ],
    [
      'ALLOWED_SEV_FEATURES ignored without the CPU feature (Genoa)',
      () => {},
      { allowedSevFeatures: (1n << 63n) | 1n },
      'entered',
    ],
    [
      'not RMP-covered',
      (p) => {
        p.memory.writeU64(12 * MiB + 0xd0, 0x1000n);
        p.memory.writeU64(12 * MiB + 0x3b0, 0x1n);
      },
      { vmsaPa: 12 * MiB },
      F.VMSA_NOT_RMP_COVERED,
    ],
    ['hypervisor-owned page', entry({ assigned: false, asid: 0 }), {}, F.VMSA_NOT_GUEST_OWNED],
    ['other ASID', () => {}, { asid: ASID + 1 }, F.VMSA_NOT_GUEST_OWNED],
    ['reverse map: other GPA', () => {}, { vmsaGpa: 0x5000 }, F.VMSA_REVERSE_MAP],
    ['immutable (Pre-Guest)', entry({ immutable: true }), {}, F.VMSA_IMMUTABLE],
    ['VMSA bit clear', entry({ vmsa: false }), {}, F.VMSA_BIT_CLEAR],
    ['not validated: allowed by default', entry({ validated: false }), {}, 'entered'],
  ];
  for (const [name, prep, over, expected] of cases) {
    const p = setup();
    prep(p);
    assert.equal(reason(p.vmrun(req(over))), expected, name);
  }
  assert.equal(reason(setup(0x21n, CPU_PROFILES.genoa, false).vmrun(req())), F.SNP_NOT_ENABLED);
  assert.throws(() => setup().vmrun({ cpu: 0, asid: ASID, vmsaPa: VMSA }), /vmsaGpa/);
  const noRevMap = { ...CPU_PROFILES.genoa, vmrunReverseMapCheck: false };
  assert.equal(reason(setup(0x21n, noRevMap).vmrun({ cpu: 0, asid: ASID, vmsaPa: VMSA })), 'entered');
  const needsValidated = { ...CPU_PROFILES.genoa, vmrunRequiresValidated: true };
  const q = setup(0x21n, needsValidated);
  entry({ validated: false })(q);
  assert.equal(reason(q.vmrun(req())), F.VMSA_NOT_VALIDATED);
});

test('ALLOWED_SEV_FEATURES (VMCB 0x138) on a CPU with the feature (turin preset)', () => {
  const F = VmrunFailure;
  const enable = 1n << 63n;
  const run = (features: bigint, allowed?: bigint) =>
    reason(
      setup(features, CPU_PROFILES.turin).vmrun(
        req(allowed === undefined ? {} : { allowedSevFeatures: allowed }),
      ),
    );
  // Linux: allowed = vmsa_features | VMCB_ALLOWED_SEV_FEATURES_VALID (sev_es_init_vmcb).
  assert.equal(run(0x21n, enable | 0x21n), 'entered', 'every feature allowed');
  assert.equal(run(0x21n, enable | 0x1n), F.SEV_FEATURES_NOT_ALLOWED, 'DebugSwap (bit 5) not allowed');
  assert.equal(run(0x21n, enable | 0x7fff_ffff_ffff_ffdfn), F.SEV_FEATURES_NOT_ALLOWED, 'only bit 5 missing');
  assert.equal(run(0x21n, 0x1n), 'entered', 'mask not enabled (bit 63 clear): no restriction');
  assert.equal(run(0x21n), 'entered', 'no mask given');
  // PmcVirtualization (11) and SecureAvic (16) need an enabled mask that allows them.
  for (const bit of [11n, 16n]) {
    const f = 0x1n | (1n << bit);
    assert.equal(run(f), F.SEV_FEATURES_OPT_IN_NOT_ENABLED, `bit ${bit} without a mask`);
    assert.equal(run(f, 1n << bit), F.SEV_FEATURES_OPT_IN_NOT_ENABLED, `bit ${bit}, mask not enabled`);
    assert.equal(run(f, enable | 0x1n), F.SEV_FEATURES_NOT_ALLOWED, `bit ${bit} outside the mask`);
    assert.equal(run(f, enable | f), 'entered', `bit ${bit} opted in`);
    assert.equal(
      reason(setup(f).vmrun(req())),
      'entered',
      `bit ${bit} on Genoa: no ALLOWED_SEV_FEATURES check`,
    );
  }
  const r = setup(0x21n, CPU_PROFILES.turin).vmrun(req({ allowedSevFeatures: enable | 0x1n }));
  assert.equal(r.kind, 'vmexit');
  assert.equal(r.kind === 'vmexit' && r.exitCode, VmexitCode.INVALID);
  assert.match(r.kind === 'vmexit' ? r.detail : '', /0x20 not in ALLOWED_SEV_FEATURES/);
});

test('VMRUN of a 2 MB-aligned VMSA follows the erratum switch', () => {
  const at2M = 0x200000;
  for (const erratum of [false, true]) {
    const p = setup(0x1n, { ...CPU_PROFILES.genoa, vmsa2MAlignedErratum: erratum });
    p.firmwareWrite(at2M / 4096, makeRmpEntry({ assigned: true, asid: ASID, gpa: GPA, vmsa: true }));
    p.memory.writeU64(at2M + 0xd0, 0x1000n);
    p.memory.writeU64(at2M + 0x3b0, 0x1n);
    assert.equal(
      reason(p.vmrun(req({ vmsaPa: at2M }))),
      erratum ? VmrunFailure.VMSA_2M_ALIGNED_ERRATUM : 'entered',
    );
  }
});

test('VMRUN of a non-SNP-active (SEV-ES) VMSA: the page must be Hypervisor-Owned', () => {
  const p = setup(0n);
  assert.equal(reason(p.vmrun(req())), VmrunFailure.VMSA_NOT_HYPERVISOR_OWNED);
  p.firmwareWrite(VMSA / 4096, makeRmpEntry({}));
  const r = p.vmrun(req());
  assert.deepEqual(r, { kind: 'entered', sevFeatures: 0n, snpActive: false });
  assert.equal(
    p.rmpupdate(VMSA, { gpa: 0, assigned: true, pageSize: 0, immutable: false, asid: 1 }),
    RmpStatus.FAIL_INUSE,
  );
});

test('VMCB page must be Hypervisor-Owned: #GP(0)', () => {
  const p = setup();
  const r = p.vmrun(req({ vmcbPa: VMSA }));
  assert.equal(r.kind, 'gp');
  assert.equal(reason(p.vmrun(req({ vmcbPa: 0x5000 }))), 'entered');
});

test('in-use marking: RMPUPDATE FAIL_INUSE and RMPADJUST NPF from another vCPU until #VMEXIT', () => {
  const p = setup(SevFeature.SNP_ACTIVE);
  const shared = { gpa: 0, assigned: false, pageSize: 0 as const, immutable: false, asid: 0 };
  assert.equal(p.rmpupdate(VMSA, shared), RmpStatus.SUCCESS, 'not running yet');
  p.firmwareWrite(
    VMSA / 4096,
    makeRmpEntry({ assigned: true, asid: ASID, gpa: GPA, validated: true, vmsa: true }),
  );
  assert.equal(p.vmrun(req({ cpu: 2 })).kind, 'entered');
  assert.equal(p.inUse.isInUse(VMSA / 4096), true);
  assert.equal(p.rmpupdate(VMSA, shared), RmpStatus.FAIL_INUSE);
  assert.equal(p.psmash(0), 4, 'PSMASH of another region is unaffected (bad address: 4K entry)');
  // Another CPU running the same VMSA: VMEXIT_INVALID (profile default).
  assert.equal(reason(p.vmrun(req({ cpu: 3 }))), VmrunFailure.VMSA_IN_USE);
  // The same CPU re-entering is fine.
  assert.equal(reason(p.vmrun(req({ cpu: 2 }))), 'entered');
  // RMPADJUST of the VMSA by a vCPU on another CPU: NPF.
  const guest = makeGuestContext({ asid: ASID, cpu: 5, offset: VMSA - GPA });
  assert.equal(p.rmpadjust(guest, GPA, 0, 1n).kind, 'npf');
  assert.deepEqual(p.vmexit(2), [VMSA / 4096]);
  assert.deepEqual(p.vmexit(2), []);
  assert.equal(p.rmpadjust(guest, GPA, 0, 1n).kind, 'eax');
  assert.equal(p.rmpupdate(VMSA, shared), RmpStatus.SUCCESS);
  // With vmrunInUseVmsa = allowed two CPUs may run it; the page stays in use until both exit.
  const q = setup(SevFeature.SNP_ACTIVE, { ...CPU_PROFILES.genoa, vmrunInUseVmsa: 'allowed' });
  assert.equal(q.vmrun(req({ cpu: 0 })).kind, 'entered');
  assert.equal(q.vmrun(req({ cpu: 1 })).kind, 'entered');
  q.vmexit(0);
  assert.equal(q.rmpupdate(VMSA, shared), RmpStatus.FAIL_INUSE);
  q.vmexit(1);
  assert.equal(q.rmpupdate(VMSA, shared), RmpStatus.SUCCESS);
});
