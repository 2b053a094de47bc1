/**
 * The scenario file format (JSON), as TypeBox schemas. A scenario is a list of guest-side steps,
 * each of which becomes one or more agent-protocol requests (guest-harness/agent/PROTOCOL.md), plus
 * host-side steps that only a model-backed target can execute. The same schema is published as
 * `schemas/scenario.schema.json` (see json-schema.ts) so editors complete scenario files.
 */
import { type Static, type TOptional, type TProperties, Type } from '@sinclair/typebox';
import {
  KVM_MP_STATE,
  SVM_VMGEXIT_AP_CREATE,
  SVM_VMGEXIT_AP_CREATE_ON_INIT,
  SVM_VMGEXIT_AP_DESTROY,
} from '../../host/index.js';
import { GHCB_VALID_FIELDS, VMSA_FIELDS, type VmsaField } from '../protocol/index.js';

/** A token as the agent protocol allows it in a value position (PROTOCOL.md "Framing"). */
export const TOKEN_PATTERN = '^[a-z0-9][a-z0-9_.:-]*$';
/** Hex form of a 64-bit value in scenario files (JSON numbers lose precision above 2^53). */
export const HEX64_PATTERN = '^0x[0-9a-fA-F]{1,16}$';

const Token = (description: string) => Type.String({ pattern: TOKEN_PATTERN, maxLength: 64, description });

/** An unsigned 64-bit value: a JSON integer up to 2^53-1 or a hex string `0x...` up to 16 digits. */
export const U64 = Type.Union(
  [Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }), Type.String({ pattern: HEX64_PATTERN })],
  {
    title: 'U64',
    description: 'an unsigned 64-bit value: a non-negative integer or a hex string such as "0x80000013"',
  },
);
export type U64 = Static<typeof U64>;

const uint = (maximum: number, description: string) => Type.Integer({ minimum: 0, maximum, description });

/** A page handle: the scenario's name for a VMSA page (mapped to the protocol's `h=0..63`). */
export const PageName = Type.String({
  title: 'PageName',
  pattern: '^[A-Za-z][A-Za-z0-9_-]{0,31}$',
  description: 'name of a VMSA page allocated by an earlier vmsa-alloc step (at most 64 pages per scenario)',
});

/**
 * KVM_MP_STATE_* names and values (the host's table, without its snpsim-only OFFLINE state).
 * // [LX] include/uapi/linux/kvm.h
 */
const { SNPSIM_OFFLINE: _offline, ...kvmMpStates } = KVM_MP_STATE;
export const MP_STATES = Object.freeze(kvmMpStates);
export type MpStateName = keyof typeof MP_STATES;
export const MpStateName = Type.Union(
  (Object.keys(MP_STATES) as MpStateName[]).map((name) => Type.Literal(name)),
  { title: 'MpStateName', description: 'a KVM_MP_STATE_* name without the prefix' },
);

/** Named VMSA fields: the agent's `vmsa-set` fields (PROTOCOL.md verb table). */
const VmsaFields = Type.Object(
  Object.fromEntries(VMSA_FIELDS.map((f) => [f, Type.Optional(U64)])) as Record<
    VmsaField,
    TOptional<typeof U64>
  >,
  {
    title: 'VmsaFields',
    additionalProperties: false,
    minProperties: 1,
    description: 'named VMSA fields to overwrite (struct sev_es_save_area), applied in the order written',
  },
);

export const Poke = Type.Object(
  {
    offset: uint(0xfff, 'byte offset in the 4 KiB VMSA page'),
    width: Type.Union([Type.Literal(1), Type.Literal(2), Type.Literal(4), Type.Literal(8)], {
      description: 'bytes written: 1, 2, 4 or 8 (little endian)',
    }),
    value: U64,
  },
  { title: 'Poke', additionalProperties: false, description: 'a raw little-endian write into the VMSA page' },
);
export type Poke = Static<typeof Poke>;

// ---- per-step expectations ----------------------------------------------------------------

/** A value in an expectation: a number, a hex string or a protocol token. */
export const ExpectedValue = Type.Union(
  [
    Type.Integer({ minimum: -(2 ** 31), maximum: Number.MAX_SAFE_INTEGER }),
    Type.String({ pattern: HEX64_PATTERN }),
    Type.String({ pattern: TOKEN_PATTERN }),
  ],
  { title: 'ExpectedValue', description: 'an integer, a hex string "0x..", or a protocol token' },
);

/** Internal model state expected after a step; checked only on the model (reference) run. */
export const ModelExpect = Type.Object(
  {
    mpState: Type.Optional(
      Type.Record(Type.String({ pattern: '^[0-9]+$' }), MpStateName, {
        description: 'vCPU index -> expected KVM mp_state',
      }),
    ),
    pvUnhalted: Type.Optional(
      Type.Record(Type.String({ pattern: '^[0-9]+$' }), Type.Boolean(), {
        description: 'vCPU index -> expected pv_unhalted',
      }),
    ),
    vmsaBit: Type.Optional(
      Type.Record(PageName, Type.Boolean(), { description: 'page -> expected VMSA bit of its RMP entry' }),
    ),
    validated: Type.Optional(
      Type.Record(PageName, Type.Boolean(), {
        description: 'page -> expected Validated bit of its RMP entry',
      }),
    ),
  },
  {
    title: 'ModelExpect',
    additionalProperties: false,
    description: 'internal model state (never compared with a real target)',
  },
);
export type ModelExpect = Static<typeof ModelExpect>;

export const StepExpect = Type.Object(
  {
    outcome: Type.Optional(
      Type.Union([Type.Literal('ok'), Type.Literal('err')], {
        description: 'agent answer kind (default ok)',
      }),
    ),
    code: Type.Optional(Token('agent error code when outcome is err (bad-handle, failed, unsupported ...)')),
    values: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]*$' }), ExpectedValue, {
        description: 'response keys that must have these values (e.g. sw_exit_info1, eax, cf, ran)',
      }),
    ),
    vm: Type.Optional(
      Type.Union([Type.Literal('alive'), Type.Literal('dead')], {
        description: 'whether the guest VM is still alive after the step',
      }),
    ),
    model: Type.Optional(ModelExpect),
  },
  { title: 'StepExpect', additionalProperties: false, description: 'what this step must observe' },
);
export type StepExpect = Static<typeof StepExpect>;

const common = {
  id: Type.Optional(
    Type.String({ pattern: '^[a-z0-9][a-z0-9_-]{0,47}$', description: 'step id (unique in the scenario)' }),
  ),
  note: Type.Optional(Type.String({ maxLength: 400, description: 'why this step is here' })),
  expect: Type.Optional(StepExpect),
  expectPolicy: Type.Optional(
    Type.Record(Type.String({ pattern: TOKEN_PATTERN }), StepExpect, {
      description:
        'host policy name -> expectation replacing `expect` when the model runs that policy (what each KVM version does)',
    }),
  ),
};

const step = <O extends string, T extends TProperties>(op: O, description: string, fields: T) =>
  Type.Object({ op: Type.Literal(op), ...common, ...fields }, { additionalProperties: false, description });

// ---- guest steps: one agent verb each (vmsa-init may add vmsa-set / vmsa-poke requests) ----

export const HvFeaturesStep = step(
  'hv-features',
  'GHCB MSR protocol HV_FEATURES request (0x080/0x081); observes msr and features',
  {},
);
export const SevInfoStep = step(
  'sev-info',
  'GHCB MSR protocol SEV_INFO request (0x002/0x001); observes msr, max, min, cbit',
  {},
);
export const VmsaAllocStep = step('vmsa-alloc', 'allocate a 4 KiB guest page to be used as a VMSA', {
  page: PageName,
  placement: Type.Optional(
    Type.Union([Type.Literal('split'), Type.Literal('2m-aligned')], {
      description:
        'split = second page of an order-1 block, never 2 MiB aligned (Linux snp_alloc_vmsa_page); 2m-aligned = a 2 MiB aligned page (default split)',
    }),
  ),
  memory: Type.Optional(
    Type.Union([Type.Literal('private'), Type.Literal('shared'), Type.Literal('unvalidated')], {
      description:
        'private = guest-owned and validated; shared = converted to shared; unvalidated = private but PVALIDATE rescinded (default private)',
    }),
  ),
});
export const VmsaInitStep = step(
  'vmsa-init',
  'fill a VMSA page from a template, then apply named field overrides and raw pokes',
  {
    page: PageName,
    template: Type.Optional(
      Type.Union([Type.Literal('linux'), Type.Literal('ovmf'), Type.Literal('zero')], {
        description:
          'linux = wakeup_cpu_via_vmgexit INIT state; ovmf = SevSnpCreateSaveArea; zero (default linux)',
      }),
    ),
    stub: Type.Optional(
      Type.Boolean({ description: "point CS:RIP at the module's marker stub (default true)" }),
    ),
    fields: Type.Optional(VmsaFields),
    pokes: Type.Optional(Type.Array(Poke, { minItems: 1, maxItems: 32 })),
  },
);
export const VmsaSetStep = step('vmsa-set', 'overwrite named fields of an initialised VMSA page', {
  page: PageName,
  fields: VmsaFields,
});
export const VmsaPokeStep = step('vmsa-poke', 'raw little-endian writes into a VMSA page', {
  page: PageName,
  pokes: Type.Array(Poke, { minItems: 1, maxItems: 32 }),
});
export const RmpadjustStep = step('rmpadjust', 'RMPADJUST on the page from VMPL0; observes eax', {
  page: PageName,
  vmsa: Type.Optional(
    Type.Boolean({
      description:
        'true = RDX 0x10001 (target VMPL1, VMSA bit set); false = RDX 0x1 (clear). Give vmsa or rdx',
    }),
  ),
  rdx: Type.Optional(U64),
  size: Type.Optional(
    Type.Union([Type.Literal(0), Type.Literal(1)], { description: 'RCX page size: 0 = 4 KiB, 1 = 2 MiB' }),
  ),
});
export const PvalidateStep = step('pvalidate', 'PVALIDATE the page; observes eax and cf', {
  page: PageName,
  validate: Type.Optional(
    Type.Boolean({ description: 'true = validate (EDX 1), false = rescind (default true)' }),
  ),
  size: Type.Optional(
    Type.Union([Type.Literal(0), Type.Literal(1)], { description: 'ECX page size: 0 = 4 KiB, 1 = 2 MiB' }),
  ),
});

/** AP Creation request names and codes (SW_EXITINFO1[15:0]); the host's SVM_VMGEXIT_AP_* values. */
export const AP_REQUESTS = Object.freeze({
  'create-on-init': SVM_VMGEXIT_AP_CREATE_ON_INIT,
  create: SVM_VMGEXIT_AP_CREATE,
  destroy: SVM_VMGEXIT_AP_DESTROY,
} as const);
export type ApRequestName = keyof typeof AP_REQUESTS;

/** GHCB fields an AP Creation request can mark valid (PROTOCOL.md `valid=`). */
export const VALID_FIELDS = GHCB_VALID_FIELDS;

const apCreationFields = {
  request: Type.Union(
    [
      Type.Literal('create-on-init'),
      Type.Literal('create'),
      Type.Literal('destroy'),
      uint(0xffff, 'raw request code, SW_EXITINFO1[15:0]'),
    ],
    { description: 'create-on-init (0), create (1), destroy (2) or a raw request code 0..0xffff' },
  ),
  apic: uint(0xffffffff, 'target APIC ID, SW_EXITINFO1[63:32]'),
  vmpl: Type.Optional(uint(15, 'target VMPL, SW_EXITINFO1[19:16] (default 0)')),
  page: Type.Optional(PageName),
  gpa: Type.Optional(U64),
  exitCode: Type.Optional(U64),
  info1: Type.Optional(U64),
  info2: Type.Optional(U64),
  rax: Type.Optional(U64),
  valid: Type.Optional(
    Type.Array(Type.Union(VALID_FIELDS.map((f) => Type.Literal(f))), {
      uniqueItems: true,
      description: 'GHCB fields marked valid (default: all four, but rax not for destroy); [] marks none',
    }),
  ),
};
export const ApCreationStep = step(
  'ap-creation',
  'SNP AP Creation NAE event (0x80000013) through a registered GHCB; observes sw_exit_info1/2',
  apCreationFields,
);
export const CpuOfflineStep = step('cpu-offline', 'take a guest CPU offline (sysfs online=0)', {
  cpu: uint(4095, 'guest CPU number'),
});
export const CpuOnlineStep = step(
  'cpu-online',
  'bring a guest CPU online (sysfs online=1: Linux sends CREATE)',
  {
    cpu: uint(4095, 'guest CPU number'),
  },
);
export const InitSipiStep = step('init-sipi', 'send INIT then SIPI to an APIC ID', {
  apic: uint(0xffffffff, 'target APIC ID'),
  vector: Type.Optional(uint(0xff, 'SIPI vector (KVM never applies it to an SEV-ES/SNP vCPU; default 0)')),
});
export const PvKickStep = step('pv-kick', 'KVM_HC_KICK_CPU hypercall; observes ret', {
  apic: uint(0xffffffff, 'target APIC ID'),
});
export const WaitMarkerStep = step('wait-marker', "wait for the AP's stub marker on the page; observes ran", {
  page: PageName,
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 10000, description: 'default 500' })),
});
export const VmsaFreeStep = step('vmsa-free', 'clear the VMSA bit (RDX 0x1) and free the page where safe', {
  page: PageName,
});

// ---- host-side steps (model-backed targets only) -------------------------------------------

export const HostSetMpStateStep = step(
  'host-set-mp-state',
  'KVM_SET_MP_STATE on a vCPU (host side; model-backed targets only); observes ret',
  {
    vcpu: uint(4095, 'vCPU index'),
    state: Type.Union([MpStateName, uint(0xffffffff, 'raw KVM_MP_STATE value')]),
  },
);
export const HostRunStep = step(
  'host-run',
  'let the host run a vCPU through KVM_RUN now (model only); observes the exit',
  {
    vcpu: uint(4095, 'vCPU index'),
  },
);

/** A request issued from a given vCPU inside a concurrent group. */
export const ConcurrentRequest = Type.Object(
  {
    from: uint(4095, 'issuing vCPU index (must be online and not the target)'),
    ...apCreationFields,
  },
  { additionalProperties: false, description: 'an AP Creation request issued from vCPU `from`' },
);
export type ConcurrentRequest = Static<typeof ConcurrentRequest>;

export const ConcurrentStep = step(
  'concurrent',
  'AP Creation requests issued at the same time from several vCPUs (model only); the host scheduler runs them in every distinct order (or the given ones) and the step observes the outcome of each order',
  {
    requests: Type.Array(ConcurrentRequest, { minItems: 2, maxItems: 4 }),
    orders: Type.Optional(
      Type.Array(Type.Array(uint(3, 'index into requests')), {
        minItems: 1,
        description:
          'request orders to run one request after the other, each to completion (default: every interleaving of the atomic steps)',
      }),
    ),
    interleaveTargets: Type.Optional(
      Type.Boolean({
        description:
          "also interleave the target vCPUs' threads (request processing, VMRUN) with the issuers (default false: targets run after the issuers; far fewer orders)",
      }),
    ),
  },
);

export const STEP_SCHEMAS = [
  HvFeaturesStep,
  SevInfoStep,
  VmsaAllocStep,
  VmsaInitStep,
  VmsaSetStep,
  VmsaPokeStep,
  RmpadjustStep,
  PvalidateStep,
  ApCreationStep,
  CpuOfflineStep,
  CpuOnlineStep,
  InitSipiStep,
  PvKickStep,
  WaitMarkerStep,
  VmsaFreeStep,
  HostSetMpStateStep,
  HostRunStep,
  ConcurrentStep,
] as const;

export const Step = Type.Union([...STEP_SCHEMAS], { description: 'one scenario step, selected by `op`' });
export type Step = Static<typeof Step>;
export type StepOp = Step['op'];
export type StepOf<O extends StepOp> = Extract<Step, { op: O }>;

/** Ops whose steps only a model-backed target with host steps can run. */
export const HOST_OPS: ReadonlySet<StepOp> = new Set<StepOp>(['host-set-mp-state', 'host-run', 'concurrent']);
/** Ops that no agent verb expresses: only the in-process model target runs them. */
export const MODEL_ONLY_OPS: ReadonlySet<StepOp> = new Set<StepOp>(['host-run', 'concurrent']);

export const Scenario = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    name: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9][a-z0-9_.-]{0,79}$',
        description: 'unique scenario name (default: the file name without .json)',
      }),
    ),
    description: Type.String({
      minLength: 10,
      maxLength: 2000,
      description: 'what the scenario probes and the outcome the references predict',
    }),
    tags: Type.Optional(Type.Array(Token('tag'), { uniqueItems: true })),
    vcpus: Type.Optional(
      Type.Integer({
        minimum: 2,
        maximum: 64,
        description: 'vCPUs of the model VM (default 4); a target needs at least this many possible CPUs',
      }),
    ),
    destructive: Type.Optional(
      Type.Boolean({
        description:
          'the scenario may stop the VM (runs after the others; a real target cannot continue after it)',
      }),
    ),
    steps: Type.Array(Step, { minItems: 1, maxItems: 256 }),
  },
  { additionalProperties: false, description: 'an snpsim scenario: guest steps, per-step expectations' },
);
export type Scenario = Static<typeof Scenario>;
