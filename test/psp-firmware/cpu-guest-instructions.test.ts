import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CPU_PROFILES,
  type CpuProfile,
  type GuestContext,
  makeGuestContext,
  PfErr,
  Platform,
  RmpStatus,
  VC_PAGE_NOT_VALIDATED,
} from '../../psp-firmware/index.js';

const MiB = 2 ** 20;
const S = RmpStatus;
/** sPA = gPA + OFF for the guest. */
const OFF = 4 * MiB;
const ASID = 1;
const NPF_RMP = PfErr.RMP + PfErr.GUEST_FINAL + PfErr.ENC + PfErr.PRESENT;

function ctx(over: Partial<Parameters<typeof makeGuestContext>[0]> = {}): GuestContext {
  return makeGuestContext({ asid: ASID, offset: OFF, ...over });
}

/** A platform where GPA 0x1000 (4K) is Guest-Valid and GPA 0x200000 (2M) is an assigned 2 MB page. */
function setup(profile: CpuProfile = CPU_PROFILES.genoa, validate = true): Platform {
  const p = new Platform({ memoryBytes: 16 * MiB, coveredBytes: 8 * MiB, profile });
  assert.equal(
    p.rmpupdate(OFF + 0x1000, { gpa: 0x1000, assigned: true, pageSize: 0, immutable: false, asid: ASID }),
    0,
  );
  assert.equal(
    p.rmpupdate(OFF + 0x200000, { gpa: 0x200000, assigned: true, pageSize: 1, immutable: false, asid: ASID }),
    0,
  );
  if (validate) {
    assert.deepEqual(p.pvalidate(ctx(), 0x1000, 0, 1), { kind: 'eax', eax: 0, cf: 0 });
    assert.deepEqual(p.pvalidate(ctx(), 0x200000, 1, 1), { kind: 'eax', eax: 0, cf: 0 });
  }
  return p;
}

const eax = (v: number) => ({ kind: 'eax', eax: v });

test('PVALIDATE: every return code, rFLAGS.CF and fault', () => {
  const notPresent: GuestContext = { ...ctx(), translate: () => -1 };
  type Case = [string, (p: Platform) => unknown, unknown];
  const cases: Case[] = [
    ['rescind a validated page', (p) => p.pvalidate(ctx(), 0x1000, 0, 0), { ...eax(0), cf: 0 }],
    [
      'validate an already validated page: CF = 1',
      (p) => p.pvalidate(ctx(), 0x1000, 0, 1),
      { ...eax(0), cf: 1 },
    ],
    [
      'rescind an unvalidated page: CF = 1',
      (p) => {
        p.pvalidate(ctx(), 0x1000, 0, 0);
        return p.pvalidate(ctx(), 0x1000, 0, 0);
      },
      { ...eax(0), cf: 1 },
    ],
    [
      'outside an SNP-active guest: #UD',
      (p) => p.pvalidate(ctx({ snpActive: false }), 0x1000, 0, 1).kind,
      'ud',
    ],
    ['CPL 3: #GP(0)', (p) => p.pvalidate(ctx({ cpl: 3 }), 0x1000, 0, 1).kind, 'gp'],
    ['page size 2', (p) => p.pvalidate(ctx(), 0x1000, 2, 1), { ...eax(S.FAIL_INPUT), cf: 0 }],
    ['EDX 2', (p) => p.pvalidate(ctx(), 0x1000, 0, 2), { ...eax(S.FAIL_INPUT), cf: 0 }],
    ['address not 4K aligned', (p) => p.pvalidate(ctx(), 0x1008, 0, 1), { ...eax(S.FAIL_INPUT), cf: 0 }],
    [
      '2M request, address not 2M aligned',
      (p) => p.pvalidate(ctx(), 0x1000, 1, 1),
      { ...eax(S.FAIL_INPUT), cf: 0 },
    ],
    [
      'at VMPL1 (profile fail-permission)',
      (p) => p.pvalidate(ctx({ vmpl: 1 }), 0x1000, 0, 1),
      { ...eax(S.FAIL_PERMISSION), cf: 0 },
    ],
    [
      'no NPT mapping: NPF without the RMP bit',
      (p) => p.pvalidate(notPresent, 0x1000, 0, 1),
      { kind: 'npf', exitInfo1: PfErr.GUEST_FINAL + PfErr.WRITE },
    ],
    [
      'shared page: RMP NPF',
      (p) => p.pvalidate(ctx(), 0x2000, 0, 1),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      'other ASID: RMP NPF',
      (p) => p.pvalidate(ctx({ asid: 2 }), 0x1000, 0, 1),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      'wrong GPA (reverse map): RMP NPF',
      (p) => p.pvalidate(ctx({ offset: OFF + 0x1000 }), 0x0, 0, 1),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      'immutable (Pre-Guest): RMP NPF',
      (p) => {
        p.rmpupdate(OFF + 0x3000, { gpa: 0x3000, assigned: true, pageSize: 0, immutable: true, asid: ASID });
        return p.pvalidate(ctx(), 0x3000, 0, 1);
      },
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      'not RMP-covered: RMP NPF',
      (p) => p.pvalidate(ctx(), 4 * MiB, 0, 1),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      '4K request on a 2M entry: NPF with SIZEM',
      (p) => p.pvalidate(ctx(), 0x201000, 0, 0),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE + PfErr.SIZEM },
    ],
    [
      '2M request on a 4K entry: FAIL_SIZEMISMATCH',
      (p) => p.pvalidate(ctx(), 0x0, 1, 1),
      { ...eax(S.FAIL_SIZEMISMATCH), cf: 0 },
    ],
  ];
  for (const [name, run, expected] of cases) {
    const p = setup();
    p.rmpupdate(OFF, { gpa: 0, assigned: true, pageSize: 0, immutable: false, asid: ASID });
    assert.deepEqual(run(p), expected, name);
  }
  const lax = setup({ ...CPU_PROFILES.genoa, pvalidateBelowVmpl0: 'allowed' });
  assert.deepEqual(
    lax.pvalidate(ctx({ vmpl: 1 }), 0x1000, 0, 0),
    { ...eax(0), cf: 0 },
    'VMPL1 allowed by profile',
  );
});

test('PVALIDATE flips only the Validated bit (of the 2 MB head for a 2 MB page)', () => {
  const p = setup(CPU_PROFILES.genoa, false);
  const before = p.rmp.entry((OFF + 0x200000) / 4096)!;
  assert.deepEqual(p.pvalidate(ctx(), 0x200000, 1, 1), { ...eax(0), cf: 0 });
  assert.deepEqual(p.rmp.entry((OFF + 0x200000) / 4096), { ...before, validated: true });
  assert.equal(p.rmp.entry((OFF + 0x201000) / 4096)?.validated, false); // tails untouched
});

test('RMPADJUST: every return code and fault, in the VeriSMo order', () => {
  const other = ctx({ cpu: 1 });
  type Case = [string, (p: Platform) => unknown, unknown];
  const cases: Case[] = [
    ['grant VMPL1 read+write', (p) => p.rmpadjust(ctx(), 0x1000, 0, 0x0301n), eax(0)],
    ['RDX as a number', (p) => p.rmpadjust(ctx(), 0x1000, 0, 0x0301), eax(0)],
    [
      'outside an SNP-active guest: #UD',
      (p) => p.rmpadjust(ctx({ snpActive: false }), 0x1000, 0, 1).kind,
      'ud',
    ],
    ['CPL 3: #GP(0)', (p) => p.rmpadjust(ctx({ cpl: 3 }), 0x1000, 0, 1).kind, 'gp'],
    ['page size 2', (p) => p.rmpadjust(ctx(), 0x1000, 2, 1), eax(S.FAIL_INPUT)],
    ['address not aligned', (p) => p.rmpadjust(ctx(), 0x1001, 0, 1), eax(S.FAIL_INPUT)],
    ['2M request, address not 2M aligned', (p) => p.rmpadjust(ctx(), 0x1000, 1, 1), eax(S.FAIL_INPUT)],
    ['RDX bit 17 (reserved)', (p) => p.rmpadjust(ctx(), 0x1000, 0, 0x20001n), eax(S.FAIL_INPUT)],
    ['RDX bit 63 (reserved)', (p) => p.rmpadjust(ctx(), 0x1000, 0, (1n << 63n) | 1n), eax(S.FAIL_INPUT)],
    ['mask bit 5 (reserved)', (p) => p.rmpadjust(ctx(), 0x1000, 0, 0x2001n), eax(S.FAIL_INPUT)],
    ['target VMPL 4', (p) => p.rmpadjust(ctx(), 0x1000, 0, 4), eax(S.FAIL_INPUT)],
    ['RDX negative', (p) => p.rmpadjust(ctx(), 0x1000, 0, -1), eax(S.FAIL_INPUT)],
    ['target VMPL 0 from VMPL0', (p) => p.rmpadjust(ctx(), 0x1000, 0, 0), eax(S.FAIL_PERMISSION)],
    [
      'target VMPL1 from VMPL1 (Linux is_vmpl0())',
      (p) => p.rmpadjust(ctx({ vmpl: 1 }), 0x1000, 0, 1),
      eax(S.FAIL_PERMISSION),
    ],
    [
      'shared page: RMP NPF',
      (p) => p.rmpadjust(ctx(), 0x5000, 0, 1),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      'other ASID: RMP NPF',
      (p) => p.rmpadjust(ctx({ asid: 9 }), 0x1000, 0, 1),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      'not validated: #VC 0x404 (profile default)',
      (p) => {
        p.pvalidate(ctx(), 0x1000, 0, 0);
        return p.rmpadjust(ctx(), 0x1000, 0, 1);
      },
      { kind: 'vc', errorCode: VC_PAGE_NOT_VALIDATED },
    ],
    [
      '4K request on a 2M entry: NPF SIZEM',
      (p) => p.rmpadjust(ctx(), 0x201000, 0, 1),
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE + PfErr.SIZEM },
    ],
    [
      '2M request on a 4K entry: FAIL_SIZEMISMATCH',
      (p) => p.rmpadjust(ctx(), 0x0, 1, 1),
      eax(S.FAIL_SIZEMISMATCH),
    ],
    [
      'VMPL1 granting X_SUPER it lacks to VMPL2',
      (p) => {
        p.rmpadjust(ctx(), 0x1000, 0, 0x0301n);
        return p.rmpadjust(ctx({ vmpl: 1 }), 0x1000, 0, 0x0802n);
      },
      eax(S.FAIL_PERMISSION),
    ],
    [
      'VMPL1 granting a subset of its own to VMPL2',
      (p) => {
        p.rmpadjust(ctx(), 0x1000, 0, 0x0301n);
        return p.rmpadjust(ctx({ vmpl: 1 }), 0x1000, 0, 0x0102n);
      },
      eax(0),
    ],
    [
      'VMSA bit on a 2M page (profile fail-input)',
      (p) => p.rmpadjust(ctx(), 0x200000, 1, 0x10001n),
      eax(S.FAIL_INPUT),
    ],
    [
      'VMSA in use by another vCPU: NPF (Tom Lendacky)',
      (p) => {
        makeRunning(p, 0x1000);
        return p.rmpadjust(other, 0x1000, 0, 0x1n);
      },
      { kind: 'npf', exitInfo1: NPF_RMP + PfErr.WRITE },
    ],
    [
      'VMSA in use by this vCPU: allowed',
      (p) => {
        makeRunning(p, 0x1000);
        return p.rmpadjust(ctx(), 0x1000, 0, 0x1n);
      },
      eax(0),
    ],
  ];
  for (const [name, run, expected] of cases) {
    const p = setup();
    p.rmpupdate(OFF, { gpa: 0, assigned: true, pageSize: 0, immutable: false, asid: ASID });
    p.pvalidate(ctx(), 0, 0, 1);
    assert.deepEqual(run(p), expected, name);
  }
});

/** Marks guest page `gpa` a VMSA and VMRUNs it on CPU 0. */
function makeRunning(p: Platform, gpa: number): void {
  assert.deepEqual(p.rmpadjust(ctx(), gpa, 0, 0x10001n), eax(0));
  p.memory.writeU64(OFF + gpa + 0xd0, 0x1000n);
  p.memory.writeU64(OFF + gpa + 0x3b0, 0x1n);
  assert.equal(p.vmrun({ cpu: 0, asid: ASID, vmsaPa: OFF + gpa, vmsaGpa: gpa }).kind, 'entered');
}

test('RMPADJUST order: a 4K request on an unvalidated 2 MB page is an NPF SIZEM, not #VC (VeriSMo)', () => {
  const p = setup(CPU_PROFILES.genoa, false);
  assert.deepEqual(p.rmpadjust(ctx(), 0x201000, 0, 1), {
    kind: 'npf',
    exitInfo1: NPF_RMP + PfErr.WRITE + PfErr.SIZEM,
  });
  assert.deepEqual(p.rmpadjust(ctx(), 0x200000, 1, 1), { kind: 'vc', errorCode: VC_PAGE_NOT_VALIDATED });
  // A 2M request on an unvalidated 4K entry: Validated is checked before that size mismatch.
  p.rmpupdate(OFF, { gpa: 0, assigned: true, pageSize: 0, immutable: false, asid: ASID });
  assert.deepEqual(p.rmpadjust(ctx(), 0x0, 1, 1), { kind: 'vc', errorCode: VC_PAGE_NOT_VALIDATED });
  p.pvalidate(ctx(), 0x0, 0, 1);
  assert.deepEqual(p.rmpadjust(ctx(), 0x0, 1, 1), eax(S.FAIL_SIZEMISMATCH));
});

test('RMPADJUST open points follow the profile', () => {
  const g = CPU_PROFILES.genoa;
  const notValidated = (profile: CpuProfile) => {
    const p = setup(profile, false);
    return p.rmpadjust(ctx(), 0x1000, 0, 1);
  };
  assert.deepEqual(notValidated({ ...g, rmpadjustNotValidated: 'npf' }), {
    kind: 'npf',
    exitInfo1: NPF_RMP + PfErr.WRITE,
  });
  assert.deepEqual(notValidated({ ...g, rmpadjustNotValidated: 'fail-input' }), eax(S.FAIL_INPUT));
  assert.deepEqual(notValidated({ ...g, rmpadjustNotValidated: 'allowed' }), eax(0));
  const vmsa2M = (profile: CpuProfile) => setup(profile).rmpadjust(ctx(), 0x200000, 1, 0x10001n);
  assert.deepEqual(vmsa2M({ ...g, rmpadjustVmsaOn2M: 'fail-sizemismatch' }), eax(S.FAIL_SIZEMISMATCH));
  assert.deepEqual(vmsa2M({ ...g, rmpadjustVmsaOn2M: 'allowed' }), eax(0));
  const p = setup({ ...g, rmpadjustInUseVmsa: 'fail-inuse' });
  makeRunning(p, 0x1000);
  assert.deepEqual(p.rmpadjust(ctx({ cpu: 3 }), 0x1000, 0, 1n), eax(S.FAIL_INUSE));
});

test('RMPADJUST effects: target mask set, VMSA bit only from VMPL0, cleared with RDX 0x1', () => {
  const p = setup();
  const pfn = (OFF + 0x1000) / 4096;
  assert.deepEqual(p.rmpadjust(ctx(), 0x1000, 0, 0x10001n), eax(0)); // Linux snp_set_vmsa: target VMPL1, VMSA
  assert.equal(p.rmp.entry(pfn)?.vmsa, true);
  assert.deepEqual(p.rmp.entry(pfn)?.vmplPerms, [0x1f, 0, 0, 0]);
  assert.deepEqual(p.rmpadjust(ctx(), 0x1000, 0, 0x1n), eax(0)); // snp_cleanup_vmsa
  assert.equal(p.rmp.entry(pfn)?.vmsa, false);
  assert.deepEqual(p.rmpadjust(ctx(), 0x1000, 0, 0x0f01n), eax(0));
  // VMPL1 asks for VMSA on VMPL2: the bit is ignored, the mask is applied.
  assert.deepEqual(p.rmpadjust(ctx({ vmpl: 1 }), 0x1000, 0, 0x10302n), eax(0));
  const e = p.rmp.entry(pfn)!;
  assert.equal(e.vmsa, false);
  assert.deepEqual(e.vmplPerms, [0x1f, 0x0f, 0x03, 0]);
  assert.equal(e.validated, true);
});

test('RMPQUERY: return codes and output', () => {
  const p = setup();
  p.rmpadjust(ctx(), 0x1000, 0, 0x10301n);
  assert.deepEqual(p.rmpquery(ctx(), 0x1000, 1), {
    kind: 'eax',
    eax: 0,
    perms: 0x03,
    vmsa: true,
    pageSize: 0,
  });
  assert.deepEqual(p.rmpquery(ctx(), 0x1000, 0), {
    kind: 'eax',
    eax: 0,
    perms: 0x1f,
    vmsa: true,
    pageSize: 0,
  });
  assert.deepEqual(p.rmpquery(ctx(), 0x201000, 0), {
    kind: 'eax',
    eax: 0,
    perms: 0x1f,
    vmsa: false,
    pageSize: 1,
  });
  assert.deepEqual(p.rmpquery(ctx({ vmpl: 2 }), 0x1000, 1), {
    kind: 'eax',
    eax: S.FAIL_PERMISSION,
    perms: 0,
    vmsa: false,
    pageSize: 0,
  });
  assert.deepEqual(p.rmpquery(ctx(), 0x1000, 4), {
    kind: 'eax',
    eax: S.FAIL_INPUT,
    perms: 0,
    vmsa: false,
    pageSize: 0,
  });
  assert.deepEqual(p.rmpquery(ctx(), 0x1004, 0), {
    kind: 'eax',
    eax: S.FAIL_INPUT,
    perms: 0,
    vmsa: false,
    pageSize: 0,
  });
  assert.deepEqual(p.rmpquery(ctx(), 0x8000, 0), { kind: 'npf', exitInfo1: NPF_RMP });
  assert.equal(p.rmpquery(ctx({ snpActive: false }), 0x1000, 0).kind, 'ud');
  const lax = setup({ ...CPU_PROFILES.genoa, rmpqueryTargetBelowCurrent: 'allowed' });
  assert.equal(lax.rmpquery(ctx({ vmpl: 2 }), 0x1000, 0).kind, 'eax');
});
