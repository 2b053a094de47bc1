/**
 * Value kinds of protocol fields and their strict parse/format/check functions. A field table
 * (verbs.ts) names each key's kind; the codec is generic over these tables.
 */
import { formatHex, isToken, parseDec, parseHex, parseSignedDec } from './values.js';

export type FieldKind =
  /** Unsigned decimal in [0, max]; `oneOf` narrows it to listed values. */
  | { readonly kind: 'dec'; readonly max: number; readonly oneOf?: readonly number[] }
  /** Signed decimal in [min, max] (return values such as `ret=-22`). */
  | { readonly kind: 'sdec'; readonly min: number; readonly max: number }
  /** `0x` hex in [0, max], a bigint (register-like values). */
  | { readonly kind: 'hex'; readonly max: bigint }
  /** `0x` hex in [0, max], a number (small offsets and vectors). */
  | { readonly kind: 'hexnum'; readonly max: number }
  | { readonly kind: 'enum'; readonly values: readonly string[] }
  | { readonly kind: 'token' }
  /**
   * A kernel release string (`uname -r`). PROTOCOL.md says token, but Debian's own releases
   * (`6.12.111+deb12-amd64`) contain `+` and some distributions use upper case: accepted here.
   */
  | { readonly kind: 'release' }
  /** Comma-separated list of distinct names from `values`; the empty list is written `none`. */
  | { readonly kind: 'list'; readonly values: readonly string[] };

export interface FieldSpec {
  /** Wire key. */
  readonly key: string;
  /** TypeScript property. */
  readonly prop: string;
  readonly type: FieldKind;
  readonly optional?: boolean;
}

export type FieldValue = number | bigint | string | readonly string[];

export type ParsedValue =
  | { readonly ok: true; readonly value: FieldValue }
  | { readonly ok: false; readonly reason: 'bad-value' | 'out-of-range'; readonly expected: string };

const RELEASE_RE = /^[A-Za-z0-9][A-Za-z0-9_.:+~-]*$/;
const DEC_SHAPE = /^(?:0|[1-9][0-9]*)$/;
const SDEC_SHAPE = /^(?:0|-?[1-9][0-9]*)$/;
const HEX_SHAPE = /^0x(?:0|[1-9a-f][0-9a-f]*)$/;

/** Human-readable form of what a kind accepts, for error messages. */
export function describeKind(type: FieldKind): string {
  switch (type.kind) {
    case 'dec':
      return type.oneOf !== undefined ? `one of ${type.oneOf.join('|')}` : `a decimal integer 0..${type.max}`;
    case 'sdec':
      return `a signed decimal integer ${type.min}..${type.max}`;
    case 'hex':
      return `lower-case hex 0x0..${formatHex(type.max)} without leading zeros`;
    case 'hexnum':
      return `lower-case hex 0x0..0x${type.max.toString(16)} without leading zeros`;
    case 'enum':
      return `one of ${type.values.join('|')}`;
    case 'token':
      return 'a token [a-z0-9][a-z0-9_.:-]*';
    case 'release':
      return 'a kernel release [A-Za-z0-9][A-Za-z0-9_.:+~-]*';
    case 'list':
      return `a comma list of distinct ${type.values.join('|')}, or none`;
  }
}

function bad(type: FieldKind): ParsedValue {
  return { ok: false, reason: 'bad-value', expected: describeKind(type) };
}

function outOfRange(type: FieldKind): ParsedValue {
  return { ok: false, reason: 'out-of-range', expected: describeKind(type) };
}

/** Parses a wire value; distinguishes a malformed value from a well-formed one out of range. */
export function parseField(type: FieldKind, text: string): ParsedValue {
  switch (type.kind) {
    case 'dec': {
      const n = parseDec(text, type.max);
      if (n === undefined) return DEC_SHAPE.test(text) ? outOfRange(type) : bad(type);
      if (type.oneOf !== undefined && !type.oneOf.includes(n)) return outOfRange(type);
      return { ok: true, value: n };
    }
    case 'sdec': {
      const n = parseSignedDec(text, type.min, type.max);
      if (n === undefined) return SDEC_SHAPE.test(text) ? outOfRange(type) : bad(type);
      return { ok: true, value: n };
    }
    case 'hex': {
      const n = parseHex(text, type.max);
      if (n === undefined) return HEX_SHAPE.test(text) ? outOfRange(type) : bad(type);
      return { ok: true, value: n };
    }
    case 'hexnum': {
      const n = parseHex(text, BigInt(type.max));
      if (n === undefined) return HEX_SHAPE.test(text) ? outOfRange(type) : bad(type);
      return { ok: true, value: Number(n) };
    }
    case 'enum':
      return type.values.includes(text) ? { ok: true, value: text } : bad(type);
    case 'token':
      return isToken(text) ? { ok: true, value: text } : bad(type);
    case 'release':
      return RELEASE_RE.test(text) ? { ok: true, value: text } : bad(type);
    case 'list': {
      if (text === 'none') return { ok: true, value: [] };
      const items = text.split(',');
      const seen = new Set<string>();
      for (const item of items) {
        if (!type.values.includes(item) || seen.has(item)) return bad(type);
        seen.add(item);
      }
      return { ok: true, value: items };
    }
  }
}

/** Checks a typed value against its kind; returns what is expected when it does not fit. */
export function checkField(type: FieldKind, value: unknown): string | undefined {
  const expected = describeKind(type);
  switch (type.kind) {
    case 'dec':
      if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0 || value > type.max)
        return expected;
      if (type.oneOf !== undefined && !type.oneOf.includes(value)) return expected;
      return undefined;
    case 'sdec':
      return typeof value === 'number' &&
        Number.isSafeInteger(value) &&
        value >= type.min &&
        value <= type.max
        ? undefined
        : expected;
    case 'hex':
      return typeof value === 'bigint' && value >= 0n && value <= type.max ? undefined : expected;
    case 'hexnum':
      return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= type.max
        ? undefined
        : expected;
    case 'enum':
      return typeof value === 'string' && type.values.includes(value) ? undefined : expected;
    case 'token':
      return typeof value === 'string' && isToken(value) ? undefined : expected;
    case 'release':
      return typeof value === 'string' && RELEASE_RE.test(value) ? undefined : expected;
    case 'list': {
      if (!Array.isArray(value)) return expected;
      const seen = new Set<unknown>();
      for (const item of value) {
        if (typeof item !== 'string' || !type.values.includes(item) || seen.has(item)) return expected;
        seen.add(item);
      }
      return undefined;
    }
  }
}

/** Formats a value already accepted by checkField. */
export function formatField(type: FieldKind, value: FieldValue): string {
  switch (type.kind) {
    case 'hex':
      return formatHex(value as bigint);
    case 'hexnum':
      return `0x${(value as number).toString(16)}`;
    case 'list': {
      const items = value as readonly string[];
      return items.length === 0 ? 'none' : items.join(',');
    }
    default:
      return String(value);
  }
}
