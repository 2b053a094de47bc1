/**
 * The differences between presets as a table: the same request sequence on every preset, with the
 * expected observation per preset (GHCB result, what the AP does next) from ap-creation.md §B.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  hasVmsa,
  KVM_MP_STATE,
  kvmSetMpState,
  mpStateName,
  PRESET_NAMES,
  type RunOutcome,
  SVM_SEV_FEAT,
  SVM_VMGEXIT,
  type Vm,
} from '../../host/index.js';
import { apInfo1, bringUpAp, halt, makeSystem, nae, SNP_DEBUG_SWAP, VMSA_GPA } from './support.js';

/** (1, #GP event): the int expression sign-extended into the u64 SW_EXITINFO2 (see EVTINJ_GP). */
const GP = '1,0xffffffff8000030d';
const BAD_INPUT = '2,0x5';
const OK = '0,0x0';

/** What a user sees: the GHCB result, then the AP's state (and the next run's outcome when asked). */
interface Observation {
  ghcb?: string;
  ap: string;
  run?: string;
}

function apState(vm: Vm): string {
  const ap = vm.vcpu(1);
  return `${mpStateName(ap.mpState).replace('KVM_MP_STATE_', '')}/${hasVmsa(ap) ? 'vmsa' : 'no-vmsa'}`;
}

function describeRun(r: RunOutcome): string {
  switch (r.kind) {
    case 'userspace':
      return r.failEntry
        ? `FAIL_ENTRY 0x${r.failEntry.hardwareEntryFailureReason.toString(16)} (${r.layer})`
        : `exit ${r.exitReason}`;
    case 'errno':
      return `errno ${r.errno}${r.vmStopped ? ' (VM stopped)' : ''}`;
    default:
      return r.kind;
  }
}

type Scenario = (vm: Vm) => Observation;

/** Runs `scenario` on every preset (VMs with vmsa_features 0x21) and compares with `expected`. */
function table(name: string, scenario: Scenario, expected: Readonly<Record<string, Observation>>): void {
  test(`preset table: ${name}`, () => {
    assert.deepEqual(
      Object.keys(expected).sort(),
      [...PRESET_NAMES].sort(),
      'every preset has an expectation',
    );
    for (const preset of PRESET_NAMES) {
      const sys = makeSystem(preset, { vmsaFeatures: SVM_SEV_FEAT.DEBUG_SWAP });
      bringUpAp(sys);
      assert.deepEqual(scenario(sys.vm), expected[preset], `preset ${preset}`);
    }
  });
}

function request(vm: Vm, info1: bigint, info2: bigint, rax: bigint | undefined): string {
  const r = nae(vm.vcpu(0), {
    exitCode: SVM_VMGEXIT.AP_CREATION,
    info1,
    info2,
    ...(rax === undefined ? {} : { rax }),
  });
  if (r.outcome.kind !== 'exit') return describeRun(r.outcome);
  return `${r.info1},0x${r.info2.toString(16)}`;
}

/** Issue a request, then run the AP once (it applies whatever was posted). */
function requestThenRun(vm: Vm, info1: bigint, info2: bigint, rax: bigint): Observation {
  const ghcb = request(vm, info1, info2, rax);
  const run = describeRun(vm.vcpu(1).run(halt));
  return { ghcb, ap: apState(vm), run };
}

const same = (o: Observation, presets: readonly string[]) => Object.fromEntries(presets.map((p) => [p, o]));

table(
  'a bad APIC ID is reported per version and changes nothing',
  (vm) => {
    const ghcb = request(vm, apInfo1(7, 1), BigInt(VMSA_GPA), SNP_DEBUG_SWAP);
    return { ghcb, ap: apState(vm) };
  },
  {
    'rfc-v4': { ghcb: OK, ap: 'HALTED/vmsa' },
    ...same({ ghcb: GP, ap: 'HALTED/vmsa' }, ['v5-v9', 'rfc-v9']),
    ...same({ ghcb: BAD_INPUT, ap: 'HALTED/vmsa' }, ['linux-6.11', 'linux-6.15', 'linux-6.16', 'strict']),
  },
);

table(
  'CREATE whose RAX changes the injection mode',
  (vm) =>
    requestThenRun(vm, apInfo1(1, 1), BigInt(VMSA_GPA), SNP_DEBUG_SWAP | SVM_SEV_FEAT.RESTRICTED_INJECTION),
  {
    'rfc-v4': { ghcb: OK, ap: 'UNINITIALIZED/no-vmsa', run: 'blocked' },
    'v5-v9': { ghcb: GP, ap: 'STOPPED/no-vmsa', run: 'blocked' },
    'rfc-v9': { ghcb: GP, ap: 'HALTED/no-vmsa', run: 'blocked' },
    'linux-6.11': { ghcb: BAD_INPUT, ap: 'HALTED/no-vmsa', run: 'blocked' },
    ...same({ ghcb: BAD_INPUT, ap: 'HALTED/vmsa', run: 'blocked' }, ['linux-6.15', 'linux-6.16', 'strict']),
  },
);

table(
  'CREATE whose RAX lacks DebugSwap (only the exact check catches it)',
  (vm) => {
    const ghcb = request(vm, apInfo1(1, 1), BigInt(VMSA_GPA), SVM_SEV_FEAT.SNP_ACTIVE);
    return { ghcb, ap: apState(vm) };
  },
  {
    ...same({ ghcb: OK, ap: 'HALTED/vmsa' }, ['rfc-v4', 'v5-v9', 'rfc-v9', 'linux-6.11']),
    ...same({ ghcb: BAD_INPUT, ap: 'HALTED/vmsa' }, ['linux-6.15', 'linux-6.16', 'strict']),
  },
);

table(
  'DESTROY without RAX marked valid',
  (vm) => {
    const ghcb = request(vm, apInfo1(1, 2), 0n, undefined);
    return { ghcb, ap: apState(vm) };
  },
  {
    ...same({ ghcb: 'errno -22 (VM stopped)', ap: 'HALTED/vmsa' }, ['rfc-v4', 'v5-v9']),
    'rfc-v9': { ghcb: '2,0x4', ap: 'HALTED/vmsa' },
    ...same({ ghcb: OK, ap: 'HALTED/vmsa' }, ['linux-6.11', 'linux-6.15', 'linux-6.16', 'strict']),
  },
);

table('an unknown request (3)', (vm) => requestThenRun(vm, apInfo1(1, 3), BigInt(VMSA_GPA), SNP_DEBUG_SWAP), {
  'rfc-v4': { ghcb: OK, ap: 'UNINITIALIZED/no-vmsa', run: 'blocked' },
  'v5-v9': { ghcb: GP, ap: 'STOPPED/no-vmsa', run: 'blocked' },
  'rfc-v9': { ghcb: GP, ap: 'HALTED/no-vmsa', run: 'blocked' },
  'linux-6.11': { ghcb: BAD_INPUT, ap: 'HALTED/no-vmsa', run: 'blocked' },
  ...same({ ghcb: BAD_INPUT, ap: 'HALTED/vmsa', run: 'blocked' }, ['linux-6.15', 'linux-6.16', 'strict']),
});

table(
  'CREATE at a 2 MiB-aligned GPA',
  (vm) => {
    const ghcb = request(vm, apInfo1(1, 1), 0x20_0000n, SNP_DEBUG_SWAP);
    return { ghcb, ap: apState(vm) };
  },
  {
    ...same({ ghcb: OK, ap: 'HALTED/vmsa' }, ['rfc-v4', 'v5-v9']),
    'rfc-v9': { ghcb: GP, ap: 'HALTED/vmsa' },
    ...same({ ghcb: BAD_INPUT, ap: 'HALTED/vmsa' }, ['linux-6.11', 'linux-6.15', 'linux-6.16', 'strict']),
  },
);

table(
  'CREATE again on a running AP (Linux re-online, no DESTROY)',
  (vm) => {
    const ghcb = request(vm, apInfo1(1, 1), BigInt(VMSA_GPA), SNP_DEBUG_SWAP);
    return { ghcb, ap: apState(vm) };
  },
  {
    ...same({ ghcb: OK, ap: 'HALTED/vmsa' }, [
      'rfc-v4',
      'v5-v9',
      'rfc-v9',
      'linux-6.11',
      'linux-6.15',
      'linux-6.16',
    ]),
    strict: { ghcb: BAD_INPUT, ap: 'HALTED/vmsa' },
  },
);

/** DESTROY the AP and let it apply the update (a second run is a no-op for the blocked AP). */
function destroy(vm: Vm): void {
  assert.equal(request(vm, apInfo1(1, 2), 0n, SNP_DEBUG_SWAP), OK);
  vm.vcpu(1).run(halt);
}

table(
  'a destroyed AP woken by a PV kick',
  (vm) => {
    destroy(vm);
    vm.pvKick(1);
    return { ap: apState(vm), run: describeRun(vm.vcpu(1).run(halt)) };
  },
  {
    'rfc-v4': { ap: 'UNINITIALIZED/no-vmsa', run: 'errno -11' },
    'v5-v9': { ap: 'STOPPED/no-vmsa', run: 'errno -4' },
    ...same({ ap: 'HALTED/no-vmsa', run: 'FAIL_ENTRY 0xffffffff (cpu)' }, ['rfc-v9', 'linux-6.11']),
    ...same({ ap: 'HALTED/no-vmsa', run: 'FAIL_ENTRY 0xffffffffffffffff (kvm)' }, [
      'linux-6.15',
      'linux-6.16',
    ]),
    strict: { ap: 'OFFLINE (snpsim)/no-vmsa', run: 'blocked' },
  },
);

table(
  'a destroyed AP sent INIT-SIPI',
  (vm) => {
    destroy(vm);
    vm.sendInit(1);
    vm.sendSipi(1, 0x9f);
    const first = vm.vcpu(1).run(halt);
    const second = first.kind === 'errno' && first.errno === -11 ? vm.vcpu(1).run(halt) : first;
    return { ap: apState(vm), run: describeRun(second) };
  },
  {
    ...same({ ap: 'RUNNABLE/no-vmsa', run: 'FAIL_ENTRY 0xffffffff (cpu)' }, [
      'rfc-v4',
      'v5-v9',
      'rfc-v9',
      'linux-6.11',
    ]),
    ...same({ ap: 'RUNNABLE/no-vmsa', run: 'FAIL_ENTRY 0xffffffffffffffff (kvm)' }, [
      'linux-6.15',
      'linux-6.16',
    ]),
    strict: { ap: 'OFFLINE (snpsim)/no-vmsa', run: 'blocked' },
  },
);

table(
  'KVM_SET_MP_STATE(RUNNABLE) on a destroyed AP',
  (vm) => {
    destroy(vm);
    const ret = kvmSetMpState(vm.vcpu(1), KVM_MP_STATE.RUNNABLE);
    return { ghcb: `ioctl ${ret}`, ap: apState(vm), run: describeRun(vm.vcpu(1).run(halt)) };
  },
  {
    ...same({ ghcb: 'ioctl 0', ap: 'RUNNABLE/no-vmsa', run: 'FAIL_ENTRY 0xffffffff (cpu)' }, [
      'rfc-v4',
      'v5-v9',
      'rfc-v9',
      'linux-6.11',
    ]),
    ...same({ ghcb: 'ioctl 0', ap: 'RUNNABLE/no-vmsa', run: 'FAIL_ENTRY 0xffffffffffffffff (kvm)' }, [
      'linux-6.15',
      'linux-6.16',
    ]),
    strict: { ghcb: 'ioctl -22', ap: 'OFFLINE (snpsim)/no-vmsa', run: 'blocked' },
  },
);
