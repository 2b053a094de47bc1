/**
 * Typed requests and responses of the agent protocol, version 1 (guest-harness/agent/PROTOCOL.md).
 * One discriminated-union member per verb; wire keys map to camelCase properties
 * (`sw_exit_info1` -> `swExitInfo1`). 64-bit register-like values are bigint, counts are number.
 */

/** PROTOCOL.md "Hello line": the only protocol version this client and the simulated agent speak. */
export const PROTOCOL_VERSION = 1;

/** PROTOCOL.md: the agent's default install path, run over SSH as a fixed command. */
export const DEFAULT_AGENT_PATH = '/usr/local/libexec/snpsim/snpsim-agent';

export type VmsaPlacement = 'split' | '2m-aligned';
export type VmsaMemory = 'private' | 'shared' | 'unvalidated';
export type VmsaTemplate = 'linux' | 'ovmf' | 'zero';
/** PROTOCOL.md `vmsa-set` field names (struct sev_es_save_area members). */
export type VmsaField =
  | 'sev_features'
  | 'vmpl'
  | 'cpl'
  | 'efer'
  | 'cr0'
  | 'cr3'
  | 'cr4'
  | 'dr6'
  | 'dr7'
  | 'rflags'
  | 'rip'
  | 'rsp'
  | 'rax'
  | 'g_pat'
  | 'xcr0'
  | 'mxcsr'
  | 'x87_fcw'
  | 'x87_ftw'
  | 'cs_selector'
  | 'cs_attrib'
  | 'cs_limit'
  | 'cs_base';
/** GHCB valid-bitmap members an `ap-creation` request can mark valid. */
export type GhcbValidField = 'exit_code' | 'info1' | 'info2' | 'rax';
export type Bit = 0 | 1;
export type PokeWidth = 1 | 2 | 4 | 8;

export type AgentRequest =
  | { readonly verb: 'hello' }
  | { readonly verb: 'hv-features' }
  | { readonly verb: 'sev-info' }
  | {
      readonly verb: 'vmsa-alloc';
      readonly h: number;
      readonly placement: VmsaPlacement;
      readonly memory: VmsaMemory;
    }
  | { readonly verb: 'vmsa-init'; readonly h: number; readonly template: VmsaTemplate; readonly stub: Bit }
  | { readonly verb: 'vmsa-set'; readonly h: number; readonly field: VmsaField; readonly value: bigint }
  | {
      readonly verb: 'vmsa-poke';
      readonly h: number;
      readonly offset: number;
      readonly width: PokeWidth;
      readonly value: bigint;
    }
  | { readonly verb: 'rmpadjust'; readonly h: number; readonly rdx: bigint; readonly size: Bit }
  | { readonly verb: 'pvalidate'; readonly h: number; readonly validate: Bit; readonly size: Bit }
  | {
      readonly verb: 'ap-creation';
      /** SW_EXITINFO1[15:0]. */
      readonly request: number;
      /** SW_EXITINFO1[63:32]. */
      readonly apic: number;
      /** SW_EXITINFO1[19:16]. */
      readonly vmpl: number;
      /** Exactly one of `h` (SW_EXITINFO2 = that page's GPA) and `gpa`. */
      readonly h?: number;
      readonly gpa?: bigint;
      readonly exitCode?: bigint;
      readonly info1?: bigint;
      readonly info2?: bigint;
      readonly rax?: bigint;
      /** Fields marked valid in the GHCB valid bitmap; `[]` is written `valid=none`. */
      readonly valid?: readonly GhcbValidField[];
    }
  | { readonly verb: 'cpu-offline'; readonly cpu: number }
  | { readonly verb: 'cpu-online'; readonly cpu: number }
  | { readonly verb: 'init-sipi'; readonly apic: number; readonly vector: number }
  | { readonly verb: 'pv-kick'; readonly apic: number }
  | { readonly verb: 'wait-marker'; readonly h: number; readonly timeoutMs: number }
  | { readonly verb: 'vmsa-free'; readonly h: number }
  | { readonly verb: 'host-set-mp-state'; readonly vcpu: number; readonly state: number };

export type AgentVerb = AgentRequest['verb'];

/** Platform details of a hello line (PROTOCOL.md "Platform details"). */
export interface AgentHello {
  readonly protocol: number;
  readonly agent: string;
  readonly backend: 'module' | 'sim';
  /** `uname -r` of the guest (`none` from a simulated guest that has no kernel). */
  readonly kernel: string;
  /** Module version, or `none` when the module is not loaded. */
  readonly module: string;
  /** MSR 0xC0010131 (SEV_STATUS) as the module read it; absent when the module could not. */
  readonly sevStatus?: bigint;
  readonly vmpl?: number;
  readonly cpus?: number;
  readonly possibleCpus?: number;
  readonly family?: number;
  readonly model?: number;
  readonly stepping?: number;
  readonly microcode?: bigint;
  /** Simulated guest only. */
  readonly policy?: string;
  readonly profile?: string;
  /** `host_steps=1`: host-side steps (e.g. `host-set-mp-state`) are available. */
  readonly hostSteps: boolean;
  /** Keys this client does not know, kept verbatim (forward compatibility). */
  readonly extra: Readonly<Record<string, string>>;
}

/** The `ok` payload of each verb. */
export type AgentResult =
  | { readonly verb: 'hello'; readonly hello: AgentHello }
  | { readonly verb: 'hv-features'; readonly msr: bigint; readonly features: bigint }
  | {
      readonly verb: 'sev-info';
      readonly msr: bigint;
      readonly max: number;
      readonly min: number;
      readonly cbit: number;
    }
  | { readonly verb: 'vmsa-alloc'; readonly gpa: bigint }
  | { readonly verb: 'vmsa-init'; readonly sevFeatures: bigint }
  | { readonly verb: 'vmsa-set' }
  | { readonly verb: 'vmsa-poke' }
  | { readonly verb: 'rmpadjust'; readonly eax: number }
  | { readonly verb: 'pvalidate'; readonly eax: number; readonly cf: Bit }
  | { readonly verb: 'ap-creation'; readonly swExitInfo1: bigint; readonly swExitInfo2: bigint }
  | { readonly verb: 'cpu-offline'; readonly apic: number }
  | { readonly verb: 'cpu-online'; readonly apic: number }
  | { readonly verb: 'init-sipi' }
  | { readonly verb: 'pv-kick'; readonly ret: number }
  | { readonly verb: 'wait-marker'; readonly ran: Bit }
  | { readonly verb: 'vmsa-free'; readonly eax: number; readonly freed: Bit }
  | { readonly verb: 'host-set-mp-state'; readonly ret: number };

/** PROTOCOL.md "Errors": the `code=` values of an `err` response. */
export const AGENT_ERROR_CODES = Object.freeze([
  'bad-request',
  'no-module',
  'not-snp',
  'bad-handle',
  'busy',
  'unsupported',
  'failed',
] as const);
export type AgentErrorCode = (typeof AGENT_ERROR_CODES)[number];

/** An `err` response without its seq: what a backend returns when it refuses a request. */
export interface AgentFailure {
  readonly status: 'err';
  /** The verb of the request this answers (not on the wire; the client knows it from its seq). */
  readonly verb: AgentVerb;
  readonly code: AgentErrorCode;
  /** Linux errno (positive), with `code=failed`. */
  readonly errno?: number;
  /** Keys beyond the specified ones (e.g. `reason=unknown-key` on `bad-request`). */
  readonly extra?: Readonly<Record<string, string>>;
}

/** An `ok` response without its seq. */
export type AgentSuccess = AgentResult & {
  readonly status: 'ok';
  readonly extra?: Readonly<Record<string, string>>;
};

/** What answers one request, without the seq. */
export type AgentReply = AgentSuccess | AgentFailure;

/** A response line, decoded: the reply plus the seq it echoes. */
export type AgentResponse = AgentReply & { readonly seq: number };

/** Why a line was rejected; the reason is a protocol token (used as `reason=` in `bad-request`). */
export type ProtocolErrorReason =
  | 'empty-line'
  | 'too-long'
  | 'unterminated'
  | 'bad-byte'
  | 'bad-spacing'
  | 'bad-seq'
  | 'seq-order'
  | 'unknown-verb'
  | 'bad-pair'
  | 'unknown-key'
  | 'duplicate-key'
  | 'missing-key'
  | 'bad-value'
  | 'out-of-range'
  | 'conflict'
  | 'bad-status'
  | 'unknown-code'
  | 'bad-hello'
  | 'unsupported-protocol';

export interface ProtocolError {
  readonly reason: ProtocolErrorReason;
  /** One line naming what is wrong (key, value, expected form). */
  readonly message: string;
  /** The seq of the line, when it could be read. */
  readonly seq?: number;
}

/** Decoders return this instead of throwing. */
export type Decoded<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: ProtocolError };
