/**
 * The value grammar of the agent protocol (guest-harness/agent/PROTOCOL.md, "Framing"): decimal
 * integers, a leading `-` only for signed return values, `0x` hex up to 64 bits, and tokens
 * `[a-z0-9][a-z0-9_.:-]*`. Every parser here returns `undefined` on bad input and never throws.
 *
 * Canonical forms (the encoder writes them, the decoder accepts only them, so a line has exactly one
 * spelling): decimal without leading zeros, hex lower case without leading zeros (`0x0` for zero).
 * PROTOCOL.md fixes this for responses; for requests it is silent and snpsim applies the same rule.
 */

/** PROTOCOL.md: "at most 1024 bytes"; snpsim counts the terminating `\n` in those 1024 bytes. */
export const MAX_LINE_BYTES = 1024;

/** PROTOCOL.md: token grammar. */
export const TOKEN_RE = /^[a-z0-9][a-z0-9_.:-]*$/;
/** Keys are not specified by PROTOCOL.md; every key it names matches this. */
export const KEY_RE = /^[a-z][a-z0-9_]*$/;
const DEC_RE = /^(?:0|[1-9][0-9]*)$/;
const SDEC_RE = /^(?:0|-?[1-9][0-9]*)$/;
const HEX_RE = /^0x(?:0|[1-9a-f][0-9a-f]{0,15})$/;
/** Any value a response may carry under a key the client does not know (ignored, but well-formed). */
const ANY_VALUE_RE = /^(?:[a-z0-9][a-z0-9_.:,-]*|-[1-9][0-9]*)$/;

/** Unsigned decimal in [0, max] (max <= 2^53 - 1). */
export function parseDec(text: string, max: number): number | undefined {
  if (text.length > 16 || !DEC_RE.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

/** Signed decimal in [min, max]. */
export function parseSignedDec(text: string, min: number, max: number): number | undefined {
  if (text.length > 17 || !SDEC_RE.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** `0x` hex in [0, max] as a bigint (64-bit architectural values). */
export function parseHex(text: string, max: bigint): bigint | undefined {
  if (!HEX_RE.test(text)) return undefined;
  const n = BigInt(text);
  return n <= max ? n : undefined;
}

export function isToken(text: string): boolean {
  return TOKEN_RE.test(text);
}

export function isAnyValue(text: string): boolean {
  return ANY_VALUE_RE.test(text);
}

export function formatHex(value: bigint): string {
  return `0x${value.toString(16)}`;
}

/** Bytes outside printable ASCII [\x20-\x7e] make a line invalid (PROTOCOL.md "Framing"). */
export function firstBadByte(line: string): number {
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return i;
  }
  return -1;
}

export const U8_MAX = 0xff;
export const U16_MAX = 0xffff;
export const U32_MAX = 0xffff_ffff;
export const U64_MAX = 0xffff_ffff_ffff_ffffn;
