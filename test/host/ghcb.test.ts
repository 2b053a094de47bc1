/**
 * The GHCB page (offsets, valid bitmap), sev_es_validate_vmgexit in KVM's order, the full-protocol
 * plumbing (registration, sync from/to the GHCB) and the GHCB MSR protocol.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ERRNO,
  GHCB_ERR,
  GHCB_FIELD,
  GHCB_MSR,
  GHCB_PROTOCOL_VERSION_OFFSET,
  GHCB_USAGE_OFFSET,
  GHCB_VALID_BITMAP_OFFSET,
  ghcbBitmapIndex,
  KVM_EXIT,
  KVM_HC_KICK_CPU,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
  KVM_MP_STATE,
  KVM_SYSTEM_EVENT_SEV_TERM,
  Kvm,
  pscRequest,
  regGpaRequest,
  SNP_PAGE_STATE_PRIVATE,
  SVM_EXIT,
  SVM_VMGEXIT,
  sevInfoResponse,
  termRequest,
  VMGEXIT_PSC_ERROR_GENERIC,
  VMGEXIT_PSC_ERROR_INVALID_ENTRY,
  VMGEXIT_PSC_ERROR_INVALID_HDR,
  validateVmgexit,
} from '../../host/index.js';
import { BSP_EIP, buildVmsa, createSnpSystem, VmmType } from '../../psp-firmware/index.js';
import {
  apInfo1,
  GUEST_RAM,
  ghcbAt,
  ghcbGpaOf,
  halt,
  MiB,
  makeSystem,
  msrCall,
  nae,
  policyOf,
  setupGhcb,
  startAp,
  vmgexitWith,
} from './support.js';

test('GHCB offsets and valid-bitmap bits are the Linux struct ghcb ones', () => {
  assert.equal(GHCB_FIELD.rax, 0x1f8);
  assert.equal(ghcbBitmapIndex('rax'), 63);
  assert.equal(GHCB_FIELD.sw_exit_code, 0x390);
  assert.equal(ghcbBitmapIndex('sw_exit_code'), 114);
  assert.equal(ghcbBitmapIndex('sw_exit_info_1'), 115);
  assert.equal(ghcbBitmapIndex('sw_exit_info_2'), 116);
  assert.equal(ghcbBitmapIndex('sw_scratch'), 117);
  assert.equal(ghcbBitmapIndex('rcx'), 97);
  assert.equal(ghcbBitmapIndex('xcr0'), 125);
  assert.equal(ghcbBitmapIndex('cpl'), 25);
  assert.equal(GHCB_VALID_BITMAP_OFFSET, 0x3f0);
  assert.equal(GHCB_PROTOCOL_VERSION_OFFSET, 0xffa);
  assert.equal(GHCB_USAGE_OFFSET, 0xffc);
});

test('a GhcbView writes little-endian fields at their offsets and sets their valid bits', () => {
  const { vm } = makeSystem('linux-6.11', { launch: false });
  const g = ghcbAt(vm, ghcbGpaOf(0));
  g.set('sw_exit_info_1', 0x1122_3344_5566_7788n);
  const raw = vm.platform.memory.read(g.spa + 0x398, 8);
  assert.deepEqual([...raw], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  const [lo, hi] = g.validBitmap();
  assert.equal(lo, 0n);
  assert.equal(hi, 1n << BigInt(115 - 64));
  g.set('rax', 5n);
  assert.equal(g.validBitmap()[0], 1n << 63n);
  g.setValid('rax', false);
  assert.equal(g.isValid('rax'), false);
  assert.equal(g.get('rax'), 5n, 'clearing the valid bit keeps the value');
});

test('SEV information: GHCB_MSR_SEV_INFO(2, 1, 51) as KVM answers it and as a vCPU starts', () => {
  const { vm } = makeSystem('linux-6.11');
  const expected = 0x0002_0001_3300_0001n;
  assert.equal(sevInfoResponse(2n, 1n, 51), expected);
  assert.equal(vm.vcpu(1).ghcbMsr, expected, 'sev_es_vcpu_reset puts the SEV info in the GHCB MSR');
  assert.equal(msrCall(vm.vcpu(0), GHCB_MSR.SEV_INFO_REQ).response, expected);
});

test('HV features: MSR 0x080 → 0x3081 and NAE 0x8000FFFD → (0, 0x3); the value is a policy knob', () => {
  const { vm } = makeSystem('linux-6.11');
  assert.equal(msrCall(vm.vcpu(0), GHCB_MSR.HV_FT_REQ).response, 0x3081n);
  setupGhcb(vm.vcpu(0));
  const r = nae(vm.vcpu(0), { exitCode: SVM_VMGEXIT.HV_FEATURES, info1: 0n, info2: 0n });
  assert.deepEqual([r.info1, r.info2], [0n, 3n]);
  const custom = makeSystem({ ...vm.policy, advertisedHvFeatures: 0x1n }).vm;
  assert.equal(msrCall(custom.vcpu(0), GHCB_MSR.HV_FT_REQ).response, 0x1081n, 'AP Creation bit withheld');
});

test('GHCB registration is per vCPU and echoes the GFN; preferred GPA is "none"', () => {
  const { vm } = makeSystem('linux-6.11');
  const reg = msrCall(vm.vcpu(0), regGpaRequest(0x12345n));
  assert.equal(reg.response, 0x1234_5013n);
  assert.equal(vm.vcpu(0).ghcbRegisteredGpa, 0x1234_5000n);
  assert.equal(vm.vcpu(1).ghcbRegisteredGpa, 0n);
  assert.equal(msrCall(vm.vcpu(0), GHCB_MSR.PREF_GPA_REQ).response, 0xf_ffff_ffff_ffff_011n);
});

test('an unknown MSR-protocol request leaves the MSR as it is; TERM_REQ is KVM_EXIT_SYSTEM_EVENT(SEV_TERM)', () => {
  const { vm } = makeSystem('linux-6.11');
  assert.equal(msrCall(vm.vcpu(0), 0xabc_0016n).response, 0xabc_0016n, 'VMPL_REQ is not handled by KVM');
  const term = msrCall(vm.vcpu(0), termRequest(1, 3));
  assert.equal(term.outcome.kind, 'userspace');
  if (term.outcome.kind === 'userspace') {
    assert.equal(term.outcome.exitReason, KVM_EXIT.SYSTEM_EVENT);
    assert.deepEqual(term.outcome.systemEvent, { type: KVM_SYSTEM_EVENT_SEV_TERM, data: [0x31100n] });
  }
  assert.equal(term.outcome.vmStopped, true);
});

test('MSR-protocol page state change: private ↔ shared in the RMP; a bad operation is PSC_RESP_ERROR', () => {
  const { vm } = makeSystem('linux-6.11');
  const gfn = 0x300n;
  const spa = vm.memory.translate(0x300000);
  assert.equal(msrCall(vm.vcpu(0), pscRequest(gfn, SNP_PAGE_STATE_PRIVATE)).response, GHCB_MSR.PSC_RESP);
  const priv = vm.platform.firmwareRead(spa / 4096);
  assert.equal(priv?.assigned, true);
  assert.equal(priv?.asid, vm.asid);
  assert.equal(priv?.validated, false, 'a newly private page is not validated');
  assert.equal(msrCall(vm.vcpu(0), pscRequest(gfn, 2)).response, GHCB_MSR.PSC_RESP);
  assert.equal(vm.platform.firmwareRead(spa / 4096)?.assigned, false);
  assert.equal(msrCall(vm.vcpu(0), pscRequest(gfn, 3)).response, (1n << 63n) | GHCB_MSR.PSC_RESP);
});

test('full protocol: GHCB GPA 0 and an unmappable GHCB resume the guest doing nothing', () => {
  const { vm } = makeSystem('linux-6.11');
  const zero = vm.vcpu(0).run(vmgexitWith(0n));
  assert.equal(zero.kind, 'exit');
  assert.deepEqual(zero.kind === 'exit' ? zero.vmgexit : undefined, {
    protocol: 'none',
    reason: 'ghcb-gpa-not-set',
  });
  const far = vm.vcpu(0).run(vmgexitWith(0x1_0000_0000n));
  assert.deepEqual(far.kind === 'exit' ? far.vmgexit : undefined, {
    protocol: 'none',
    reason: 'ghcb-not-mappable',
  });
});

test('full protocol: an unregistered GHCB kills the VM (-EINVAL) up to 6.16 and is GHCB_ERR_NOT_REGISTERED in 2026', () => {
  const old = makeSystem('linux-6.16').vm;
  const r = nae(old.vcpu(0), { exitCode: SVM_VMGEXIT.HV_FEATURES, info1: 0n, info2: 0n });
  assert.equal(r.outcome.kind, 'errno');
  assert.equal(r.outcome.kind === 'errno' ? r.outcome.errno : 0, -ERRNO.EINVAL);
  assert.equal(r.outcome.vmStopped, true);
  const fixed = makeSystem({ ...old.policy, unregisteredGhcb: 'ghcbError' }).vm;
  const f = nae(fixed.vcpu(0), { exitCode: SVM_VMGEXIT.HV_FEATURES, info1: 0n, info2: 0n });
  assert.deepEqual([f.info1, f.info2], [2n, GHCB_ERR.NOT_REGISTERED]);
  assert.equal(f.outcome.vmStopped, false);
});

test('sync from/to the GHCB: the valid bitmap is cleared at the exit; RAX/RBX/RCX/RDX come back valid at re-entry', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  const r = nae(bsp, { exitCode: SVM_VMGEXIT.HV_FEATURES, info1: 0n, info2: 0n, rbx: 7n });
  const [lo, hi] = r.ghcb.validBitmap();
  assert.equal(lo, 0n, 'nothing but the results is valid before the next VMRUN');
  assert.equal(hi, (1n << 51n) | (1n << 52n), 'SW_EXITINFO1/2 were written with ghcb_set_*');
  bsp.run(halt);
  assert.equal(r.ghcb.isValid('rbx'), true);
  assert.equal(r.ghcb.get('rbx'), 7n);
  assert.equal(r.ghcb.isValid('rax'), true);
  assert.equal(r.ghcb.get('rax'), 0n, 'RAX was not valid, so KVM wrote back 0');
  assert.equal(r.ghcb.isValid('rcx') && r.ghcb.isValid('rdx'), true);
});

/** Validation cases in KVM's order: each row breaks one rule (and possibly a later one). */
test('sev_es_validate_vmgexit in order: usage, then SW_EXIT* valid, then per-event inputs, then the exit code', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  const cases: readonly [string, Parameters<typeof nae>[1], bigint, bigint][] = [
    [
      'usage 1 beats every other error',
      { exitCode: 0x1234n, info1: 0n, info2: 0n, usage: 1, invalid: ['sw_exit_code'] },
      2n,
      GHCB_ERR.INVALID_USAGE,
    ],
    [
      'SW_EXITCODE not valid',
      { exitCode: SVM_VMGEXIT.HV_FEATURES, info1: 0n, info2: 0n, invalid: ['sw_exit_code'] },
      2n,
      GHCB_ERR.MISSING_INPUT,
    ],
    [
      'SW_EXITINFO2 not valid, even for an unknown exit code',
      { exitCode: 0x1234n, info1: 0n, info2: 0n, invalid: ['sw_exit_info_2'] },
      2n,
      GHCB_ERR.MISSING_INPUT,
    ],
    [
      'AP Creation CREATE without RAX',
      { exitCode: SVM_VMGEXIT.AP_CREATION, info1: apInfo1(1, 1), info2: 0x21000n },
      2n,
      GHCB_ERR.MISSING_INPUT,
    ],
    [
      'AP Creation request 3 without RAX is MISSING_INPUT, not INVALID_INPUT',
      { exitCode: SVM_VMGEXIT.AP_CREATION, info1: apInfo1(1, 3), info2: 0n },
      2n,
      GHCB_ERR.MISSING_INPUT,
    ],
    [
      'PSC without a scratch area',
      { exitCode: SVM_VMGEXIT.PSC, info1: 0n, info2: 8n },
      2n,
      GHCB_ERR.MISSING_INPUT,
    ],
    [
      'VMMCALL without CPL',
      { exitCode: BigInt(SVM_EXIT.VMMCALL), info1: 0n, info2: 0n, rax: 5n },
      2n,
      GHCB_ERR.MISSING_INPUT,
    ],
    [
      'guest request with equal request/response GPAs',
      { exitCode: SVM_VMGEXIT.GUEST_REQUEST, info1: 0x5000n, info2: 0x5000n },
      2n,
      GHCB_ERR.MISSING_INPUT,
    ],
    ['unknown exit code', { exitCode: 0x8000_0099n, info1: 0n, info2: 0n }, 2n, GHCB_ERR.INVALID_EVENT],
    [
      'SNP_RUN_VMPL is not a KVM event',
      { exitCode: SVM_VMGEXIT.SNP_RUN_VMPL, info1: 0n, info2: 0n },
      2n,
      GHCB_ERR.INVALID_EVENT,
    ],
    [
      'AP Creation DESTROY without RAX is fine',
      { exitCode: SVM_VMGEXIT.AP_CREATION, info1: apInfo1(1, 2), info2: 0n },
      0n,
      0n,
    ],
  ];
  for (const [name, req, info1, info2] of cases) {
    const r = nae(bsp, req);
    assert.equal(r.outcome.kind, 'exit', `${name}: ${r.outcome.detail}`);
    assert.deepEqual([r.info1, r.info2], [info1, info2], name);
  }
});

test('sev_es_validate_vmgexit accepts exactly the exit codes of KVM 6.11 (inputs present); any other is INVALID_EVENT', () => {
  // [LX] arch/x86/kvm/svm/sev.c sev_es_validate_vmgexit, values from uapi/asm/svm.h.
  const accepted = new Set<bigint>([
    0x027n, // READ_DR7
    0x037n, // WRITE_DR7
    0x06en, // RDTSC
    0x06fn, // RDPMC
    0x072n, // CPUID
    0x076n, // INVD
    0x07bn, // IOIO
    0x07cn, // MSR
    0x081n, // VMMCALL
    0x087n, // RDTSCP
    0x089n, // WBINVD
    0x08an, // MONITOR
    0x08bn, // MWAIT
    0x8000_0001n, // MMIO_READ
    0x8000_0002n, // MMIO_WRITE
    0x8000_0003n, // NMI_COMPLETE
    0x8000_0004n, // AP_HLT_LOOP
    0x8000_0005n, // AP_JUMP_TABLE
    0x8000_0010n, // PSC
    0x8000_0011n, // GUEST_REQUEST
    0x8000_0012n, // EXT_GUEST_REQUEST
    0x8000_0013n, // AP_CREATION
    0x8000_fffdn, // HV_FEATURES
    0x8000_fffen, // TERM_REQUEST
    0x8000_ffffn, // UNSUPPORTED_EVENT
  ]);
  const policy = policyOf('linux-6.11');
  const allValid: readonly [bigint, bigint] = [(1n << 64n) - 1n, (1n << 64n) - 1n];
  const validate = (exitCode: bigint) =>
    validateVmgexit(
      {
        ghcbUsage: 0,
        validBitmap: allValid,
        exitCode,
        exitInfo1: 0x1000n,
        exitInfo2: 0x2000n,
        rax: 0n,
        snp: true,
      },
      policy,
    );
  const candidates = [
    ...Array.from({ length: 0x410 }, (_, i) => BigInt(i)),
    ...Array.from({ length: 0x20 }, (_, i) => 0x8000_0000n + BigInt(i)),
    ...[0x8000_fffcn, 0x8000_fffdn, 0x8000_fffen, 0x8000_ffffn, 0x1_0000_0027n],
  ];
  for (const code of candidates) {
    const e = validate(code);
    if (accepted.has(code)) assert.equal(e, undefined, `0x${code.toString(16)}: ${e?.message}`);
    else assert.equal(e?.reason, GHCB_ERR.INVALID_EVENT, `0x${code.toString(16)}`);
  }
});

test('AP jump table (NAE 0x80000005): SET stores SW_EXITINFO2, GET returns it, another request is INVALID_INPUT', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  const jt = (info1: bigint, info2: bigint) =>
    nae(bsp, { exitCode: SVM_VMGEXIT.AP_JUMP_TABLE, info1, info2 });
  const set = jt(0n, 0x9_f000n);
  assert.deepEqual([set.info1, set.info2], [0n, 0n]);
  assert.equal(vm.apJumpTable, 0x9_f000n);
  const get = jt(1n, 0n);
  assert.deepEqual([get.info1, get.info2], [0n, 0x9_f000n]);
  const bad = jt(2n, 0n);
  assert.deepEqual([bad.info1, bad.info2], [2n, GHCB_ERR.INVALID_INPUT]);
  assert.equal(vm.apJumpTable, 0x9_f000n, 'a bad request changes nothing');
});

test('NAE termination (0x8000FFFE) is KVM_EXIT_SYSTEM_EVENT(SEV_TERM) with the GHCB GPA; NMI_COMPLETE resumes', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  const nmi = nae(bsp, { exitCode: SVM_VMGEXIT.NMI_COMPLETE, info1: 0n, info2: 0n });
  assert.equal(nmi.outcome.kind, 'exit', nmi.outcome.detail);
  assert.deepEqual([nmi.info1, nmi.info2], [0n, 0n]);
  const term = nae(bsp, { exitCode: SVM_VMGEXIT.TERM_REQUEST, info1: 0x3n, info2: 0x7n });
  assert.equal(term.outcome.kind, 'userspace', term.outcome.detail);
  if (term.outcome.kind === 'userspace') {
    assert.equal(term.outcome.exitReason, KVM_EXIT.SYSTEM_EVENT);
    assert.deepEqual(term.outcome.systemEvent, {
      type: KVM_SYSTEM_EVENT_SEV_TERM,
      data: [BigInt(ghcbGpaOf(0))],
    });
    assert.equal(term.outcome.layer, 'guest');
  }
  assert.equal(term.outcome.vmStopped, true);
  assert.equal(bsp.run(halt).kind, 'vm-stopped');
});

test('before ad5b353240c8 (RFC v4, v5) a validation failure is KVM_RUN -EINVAL with KVM_EXIT_INTERNAL_ERROR', () => {
  const { vm } = makeSystem('v5-v9');
  setupGhcb(vm.vcpu(0));
  const r = nae(vm.vcpu(0), { exitCode: 0x8000_0099n, info1: 0n, info2: 0n });
  assert.equal(r.outcome.kind, 'errno');
  if (r.outcome.kind === 'errno') {
    assert.equal(r.outcome.errno, -ERRNO.EINVAL);
    assert.deepEqual(r.outcome.internal, {
      suberror: KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
      data: [0x8000_0099n, 0n],
    });
    assert.equal(r.outcome.layer, 'ghcb');
  }
  assert.equal(vm.vcpu(0).run(halt).kind, 'vm-stopped');
});

test('UNSUPPORTED_EVENT stops the VM (-EINVAL); an emulated exit KVM handles but snpsim does not model says so', () => {
  const a = makeSystem('linux-6.11').vm;
  setupGhcb(a.vcpu(0));
  const u = nae(a.vcpu(0), { exitCode: SVM_VMGEXIT.UNSUPPORTED_EVENT, info1: 1n, info2: 2n });
  assert.equal(u.outcome.kind === 'errno' ? u.outcome.errno : 0, -ERRNO.EINVAL);
  const b = makeSystem('linux-6.11').vm;
  setupGhcb(b.vcpu(0));
  const c = nae(b.vcpu(0), { exitCode: BigInt(SVM_EXIT.CPUID), info1: 0n, info2: 0n, rax: 1n, rcx: 0n });
  assert.equal(c.outcome.kind, 'exit');
  assert.equal(
    c.outcome.kind === 'exit' && c.outcome.vmgexit?.protocol === 'ghcb' && c.outcome.vmgexit.notModelled,
    '0x72',
  );
});

test('KVM_HC_KICK_CPU through the GHCB sets the target pv_unhalted; CPL 3 gets -KVM_EPERM; unknown hypercalls -KVM_ENOSYS', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  startAp(vm, 1);
  vm.vcpu(1).run(halt);
  setupGhcb(bsp);
  const call = (rax: bigint, cpl: bigint) =>
    nae(bsp, { exitCode: BigInt(SVM_EXIT.VMMCALL), info1: 0n, info2: 0n, rax, rbx: 0n, rcx: 1n, cpl });
  const resume = () => bsp.run(() => ({ kind: 'intr' }));
  const user = call(BigInt(KVM_HC_KICK_CPU), 3n);
  resume();
  assert.equal(user.ghcb.get('rax'), 0xffff_ffff_ffff_ffffn, '-KVM_EPERM (-1)');
  assert.equal(vm.vcpu(1).pvUnhalted, false);
  call(BigInt(KVM_HC_KICK_CPU), 0n);
  assert.equal(vm.vcpu(1).pvUnhalted, true);
  const unknown = call(0x77n, 0n);
  resume();
  assert.equal(unknown.ghcb.get('rax'), BigInt.asUintN(64, -1000n), '-KVM_ENOSYS');
  const woken = vm.vcpu(1).run(halt);
  assert.ok(woken.events.some((e) => e.kind === 'woken' && e.from === KVM_MP_STATE.HALTED));
});

test('an SEV-ES (non-SNP) VM: AP Creation fails validation on 6.11, GHCB registration terminates the guest', () => {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  const kvm = new Kvm({ platform, firmware });
  const created = kvm.createVm({
    policy: policyOf('linux-6.11'),
    vmType: 'sev-es',
    memory: [{ gpa: 0, bytes: GUEST_RAM }],
    vcpus: 1,
  });
  assert.ok(created.ok);
  const { vm } = created;
  const bsp = vm.vcpu(0);
  const image = buildVmsa({ eip: BSP_EIP, vcpuSignature: 0, sevFeatures: 0n, vmmType: VmmType.QEMU });
  platform.memory.write(bsp.launchVmsaPa ?? 0, image);
  const r = nae(bsp, { exitCode: SVM_VMGEXIT.AP_CREATION, info1: apInfo1(0, 1), info2: 0x21000n, rax: 0n });
  assert.equal(r.outcome.kind, 'exit', r.outcome.detail);
  assert.deepEqual([r.info1, r.info2], [2n, GHCB_ERR.MISSING_INPUT], 'AP Creation needs an SNP guest');
  const reg = msrCall(bsp, regGpaRequest(0x10n));
  assert.equal(reg.outcome.kind, 'userspace');
  assert.equal(
    reg.outcome.kind === 'userspace' ? reg.outcome.systemEvent?.type : 0,
    KVM_SYSTEM_EVENT_SEV_TERM,
  );
});

/** A PSC descriptor: header (cur_entry, end_entry) and entries (cur_page, gfn, operation, pagesize). */
function pscDesc(cur: number, end: number, entries: readonly [number, number, number, number][]): Uint8Array {
  const b = new Uint8Array(8 + entries.length * 8);
  const v = new DataView(b.buffer);
  v.setUint16(0, cur, true);
  v.setUint16(2, end, true);
  entries.forEach(([curPage, gfn, op, size], i) => {
    v.setBigUint64(
      8 + i * 8,
      BigInt(curPage) | (BigInt(gfn) << 12n) | (BigInt(op) << 52n) | (BigInt(size) << 56n),
      true,
    );
  });
  return b;
}

test('NAE page state change: the descriptor in the GHCB shared buffer is processed and updated in place', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  const g = ghcbAt(vm, ghcbGpaOf(0));
  const scratch = BigInt(ghcbGpaOf(0) + 0x800);
  const psc = (desc: Uint8Array) => {
    g.writeBytes(0x800, desc);
    return nae(bsp, { exitCode: SVM_VMGEXIT.PSC, info1: 0n, info2: BigInt(desc.length), scratch });
  };
  // Two adjacent private entries (coalesced), then a shared one.
  const ok = psc(
    pscDesc(0, 2, [
      [0, 0x400, 1, 0],
      [0, 0x401, 1, 0],
      [0, 0x402, 2, 0],
    ]),
  );
  assert.deepEqual([ok.info1, ok.info2], [0n, 0n]);
  const back = new DataView(g.readBytes(0x800, 32).buffer);
  assert.equal(back.getUint16(0, true), 3, 'hdr.cur_entry advanced past every entry');
  for (const i of [0, 1, 2])
    assert.equal(Number(back.getBigUint64(8 + i * 8, true) & 0xfffn), 1, `entry ${i} cur_page`);
  assert.equal(vm.platform.firmwareRead(vm.memory.translate(0x400000) / 4096)?.assigned, true);
  assert.equal(vm.platform.firmwareRead(vm.memory.translate(0x402000) / 4096)?.assigned, false);

  const hdr = psc(pscDesc(0, 253, [[0, 0x403, 1, 0]]));
  assert.deepEqual([hdr.info1, hdr.info2], [0n, VMGEXIT_PSC_ERROR_INVALID_HDR]);
  const entry = psc(pscDesc(0, 0, [[2, 0x404, 1, 0]]));
  assert.deepEqual(
    [entry.info1, entry.info2],
    [0n, VMGEXIT_PSC_ERROR_INVALID_ENTRY],
    'cur_page beyond a 4K entry',
  );
  const unaligned2M = psc(pscDesc(0, 0, [[0, 0x401, 1, 1]]));
  assert.equal(unaligned2M.info2, VMGEXIT_PSC_ERROR_INVALID_ENTRY, 'a 2M entry needs a 2M-aligned GFN');
  const outside = psc(pscDesc(0, 0, [[0, 0x40000, 1, 0]]));
  assert.equal(outside.info2, VMGEXIT_PSC_ERROR_GENERIC, 'the VMM cannot map a GFN outside guest RAM');
});

test('NAE page state change joins entries as KVM does: from a partly done 2M entry, at entry_start.gfn + npages', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  const g = ghcbAt(vm, ghcbGpaOf(0));
  // A 2M entry at GFN 0x400 with 256 pages done (0x500..0x5ff remain), then a 4K entry at GFN 0x500.
  const desc = pscDesc(0, 1, [
    [256, 0x400, 1, 1],
    [0, 0x500, 1, 0],
  ]);
  g.writeBytes(0x800, desc);
  const r = nae(bsp, {
    exitCode: SVM_VMGEXIT.PSC,
    info1: 0n,
    info2: BigInt(desc.length),
    scratch: BigInt(ghcbGpaOf(0) + 0x800),
  });
  assert.deepEqual([r.info1, r.info2], [0n, 0n]);
  const assigned = (gfn: number) =>
    vm.platform.firmwareRead(vm.memory.translate(gfn * 4096) / 4096)?.assigned;
  assert.equal(assigned(0x4ff), false, 'the pages done before are not touched again');
  assert.equal(assigned(0x500), true);
  assert.equal(assigned(0x5ff), true);
  // 0x500 == 0x400 + 256, so KVM joins the second entry to the range [0x500, +257): one page past.
  assert.equal(assigned(0x600), true, 'KVM converts GFN 0x600 as the joined range ends there');
  const back = new DataView(g.readBytes(0x800, 24).buffer);
  assert.equal(back.getUint16(0, true), 2, 'both entries complete');
  assert.equal(Number(back.getBigUint64(8, true) & 0xfffn), 512);
  assert.equal(Number(back.getBigUint64(16, true) & 0xfffn), 1);
});

test('NAE page state change: scratch area rules (GHCB_ERR_INVALID_SCRATCH_AREA)', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  const base = BigInt(ghcbGpaOf(0));
  const cases: readonly [string, bigint, bigint][] = [
    ['scratch 0', 0n, 16n],
    ['starts in the GHCB save area', base + 0x100n, 16n],
    ['runs past the shared buffer', base + 0xfe0n, 0x20n],
    ['more than 16 pages outside the GHCB', 0x50000n, 17n * 4096n],
  ];
  for (const [name, scratch, len] of cases) {
    const r = nae(bsp, { exitCode: SVM_VMGEXIT.PSC, info1: 0n, info2: len, scratch });
    assert.deepEqual([r.info1, r.info2], [2n, GHCB_ERR.INVALID_SCRATCH_AREA], name);
  }
  const unmapped = nae(bsp, { exitCode: SVM_VMGEXIT.PSC, info1: 0n, info2: 16n, scratch: 0x4000_0000n });
  assert.equal(unmapped.outcome.kind === 'errno' ? unmapped.outcome.errno : 0, -ERRNO.EFAULT);
});
