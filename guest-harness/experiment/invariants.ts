/**
 * The SNP security invariants `snpsim fuzz` checks. Each is stated on what the RMP entries say
 * (decoded by the RMP table, not by the check under test) and on what the instructions did
 * (probes record every successful PVALIDATE / RMPADJUST / VMRUN), so a wrong access check or a
 * wrong instruction shows up as a violation instead of being trusted.
 */
import type { RmpEntry } from '../../psp-firmware/index.js';

/** Every invariant: name -> the statement a violation breaks. */
export const INVARIANTS = Object.freeze({
  'host-write-guest-memory':
    'the host never writes guest- or firmware-owned memory (nor holds a writable 2 MB mapping over it)',
  'assigned-host-writable': 'an assigned page (guest- or firmware-owned) is never writable by the host',
  'unvalidated-read':
    'a guest reads data (C-bit set) only from its own validated page at that GPA; otherwise it gets #VC or #NPF',
  'guest-memory-integrity': 'a page the guest wrote keeps those contents until the guest validates it again',
  'vmrun-non-vmsa':
    'VMRUN enters an SNP-active VMSA only from a page that is a VMSA (VMSA bit set) assigned to that guest’s ASID',
  'leaves-validated': 'a page leaves a guest (owner, GPA) only with Validated and VMSA clear',
  'validated-by-pvalidate': 'Validated is set only by the owning guest’s successful PVALIDATE of that page',
  'vmsa-by-rmpadjust': 'the VMSA bit is set only by the owning guest’s successful RMPADJUST at VMPL0',
  'immutable-unchanged': 'RMPUPDATE never changes an immutable RMP entry',
  'rmp-counters':
    'the per-ASID counters and 2 MB subpage counts of the RMP match a full recount (after the host’s RMP writes and at the end of a run)',
  'dbg-non-debug-guest':
    'SNP_DBG_DECRYPT / SNP_DBG_ENCRYPT never succeed for a guest whose policy does not allow DEBUG',
  'model-exception': 'the model never throws: errors are values (docs/ARCHITECTURE.md)',
} as const);
export type InvariantName = keyof typeof INVARIANTS;
export const INVARIANT_NAMES: readonly InvariantName[] = Object.freeze(
  Object.keys(INVARIANTS) as InvariantName[],
);

/** A broken invariant: which one and what happened. */
export class InvariantViolation extends Error {
  constructor(
    readonly invariant: InvariantName,
    readonly detail: string,
  ) {
    super(`${invariant}: ${detail}`);
    this.name = 'InvariantViolation';
  }
}

const hex = (v: number | bigint) => `0x${v.toString(16)}`;

/** An RMP entry in one line, for violation details. */
export function describeEntry(e: RmpEntry | undefined): string {
  if (e === undefined) return 'not RMP-covered';
  if (!e.assigned) return `hypervisor-owned${e.validated ? ' (Validated set)' : ''}`;
  const who = e.asid === 0 ? 'firmware/ASID 0' : `ASID ${e.asid}`;
  return `${who} GPA ${hex(e.gpa)}${e.pageSize === 1 ? ' 2M' : ''}${e.immutable ? ' immutable' : ''}${e.validated ? ' validated' : ''}${e.vmsa ? ' VMSA' : ''}`;
}

/** The state of one page as the invariants see it: its governing entry and its own GPA. */
export interface PageView {
  readonly spa: number;
  readonly entry: RmpEntry | undefined;
  /** The GPA of this 4 KiB page in a guest-owned entry (a 2 MB entry's GPA + the offset). */
  readonly gpa: number;
}

const owner = (p: PageView) =>
  p.entry?.assigned === true
    ? `${p.entry.asid}:${p.gpa}`
    : p.entry === undefined
      ? 'uncovered'
      : 'hypervisor';

/** What changed in one page during one operation, checked against what the probes saw. */
export function checkTransition(
  before: PageView,
  after: PageView,
  guestAsid: number,
  seen: { readonly validated: ReadonlySet<number>; readonly vmsaSet: ReadonlySet<number> },
): InvariantViolation | undefined {
  const b = before.entry;
  const a = after.entry;
  if (b === undefined || a === undefined) return undefined;
  const pfn = Math.floor(after.spa / 4096);
  const what = () => `page at SPA ${hex(after.spa)}: ${describeEntry(b)} -> ${describeEntry(a)}`;
  if (b.assigned && b.asid === guestAsid && owner(before) !== owner(after) && (a.validated || a.vmsa)) {
    return new InvariantViolation('leaves-validated', what());
  }
  if (!b.validated && a.validated && !(a.assigned && a.asid !== 0 && seen.validated.has(pfn))) {
    return new InvariantViolation(
      'validated-by-pvalidate',
      `${what()} without a PVALIDATE of it by ASID ${a.asid}`,
    );
  }
  if (!b.vmsa && a.vmsa && !(a.assigned && a.asid !== 0 && seen.vmsaSet.has(pfn))) {
    return new InvariantViolation(
      'vmsa-by-rmpadjust',
      `${what()} without an RMPADJUST of it by ASID ${a.asid}`,
    );
  }
  return undefined;
}
