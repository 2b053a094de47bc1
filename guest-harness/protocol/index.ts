/** The agent protocol (guest-harness/agent/PROTOCOL.md), version 1: types and the line codec. */
export {
  type DecodedRequest,
  decodeHello,
  decodeRequest,
  decodeResponse,
  encodeBadRequest,
  encodeHello,
  encodeRequest,
  encodeResponse,
  HELLO_MAGIC,
  SEQ_MAX,
} from './codec.js';
export type { FieldKind, FieldSpec } from './fields.js';
export {
  AGENT_ERROR_CODES,
  type AgentErrorCode,
  type AgentFailure,
  type AgentHello,
  type AgentReply,
  type AgentRequest,
  type AgentResponse,
  type AgentResult,
  type AgentSuccess,
  type AgentVerb,
  type Bit,
  DEFAULT_AGENT_PATH,
  type Decoded,
  type GhcbValidField,
  type PokeWidth,
  PROTOCOL_VERSION,
  type ProtocolError,
  type ProtocolErrorReason,
  type VmsaField,
  type VmsaMemory,
  type VmsaPlacement,
  type VmsaTemplate,
} from './types.js';
export { MAX_LINE_BYTES } from './values.js';
export { AGENT_VERBS, GHCB_VALID_FIELDS, HELLO_FIELDS, VERBS, type VerbSpec, VMSA_FIELDS } from './verbs.js';
