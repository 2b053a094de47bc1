/**
 * Page State Change: the MSR-protocol request (0x014) and the NAE event 0x8000_0010 with its PSC
 * descriptor in the scratch area ([LX] arch/x86/kvm/svm/sev.c snp_begin_psc_msr, setup_vmgexit_scratch,
 * snp_begin_psc, snp_complete_psc; struct psc_hdr / psc_entry in asm/sev-common.h).
 *
 * KVM forwards each range to userspace as KVM_EXIT_HYPERCALL(KVM_HC_MAP_GPA_RANGE); the model folds
 * the VMM in: it sets the memory attribute and does the RMPUPDATE that guest_memfd's prepare /
 * invalidate would do (private: assigned, this ASID, the GPA, not validated; shared: hypervisor),
 * always at 4 KiB granularity. A page already in the requested state is left alone (no RMPUPDATE,
 * so a validated private page stays validated). A failed RMPUPDATE fails the hypercall (model
 * choice), which the guest sees as PSC_RESP_ERROR / VMGEXIT_PSC_ERROR_GENERIC.
 */

import { PAGES_PER_2M } from '../psp-firmware/index.js';
import {
  GHCB_MSR,
  GHCB_MSR_PSC_RESP_ERROR,
  pscRequestGfn,
  pscRequestOp,
  SNP_PAGE_STATE_PRIVATE,
  SNP_PAGE_STATE_SHARED,
} from './ghcb/msr-protocol.js';
import { PAGE_SIZE } from './kvm-constants.js';
import { rmpMakePrivate, rmpMakeShared } from './rmp-ops.js';
import type { Vm } from './vm.js';

/** VMGEXIT_PSC_MAX_COUNT: entries the GHCB spec allows [LX] sev-common.h */
export const VMGEXIT_PSC_MAX_COUNT = 253;
/** VMGEXIT_PSC_ERROR_GENERIC / _INVALID_HDR / _INVALID_ENTRY [LX] sev-common.h */
export const VMGEXIT_PSC_ERROR_GENERIC = 0x100n << 32n;
export const VMGEXIT_PSC_ERROR_INVALID_HDR = (1n << 32n) | 1n;
export const VMGEXIT_PSC_ERROR_INVALID_ENTRY = (1n << 32n) | 2n;
/** VMGEXIT_PSC_OP_PRIVATE / _SHARED [LX] sev-common.h */
export const VMGEXIT_PSC_OP_PRIVATE = 1;
export const VMGEXIT_PSC_OP_SHARED = 2;

/** The VMM's KVM_HC_MAP_GPA_RANGE: 0 on success, -EINVAL-like failure otherwise. */
export function mapGpaRange(vm: Vm, gfn: number, npages: number, toPrivate: boolean): boolean {
  for (let i = 0; i < npages; i++) {
    const gpa = (gfn + i) * PAGE_SIZE;
    const spa = vm.memory.translate(gpa);
    if (spa < 0) return false;
    if (vm.isPrivate(gpa) === toPrivate && vm.rmpMatches(spa, gpa, toPrivate)) continue;
    const status = toPrivate
      ? rmpMakePrivate(vm.platform, spa, gpa, vm.asid, false)
      : rmpMakeShared(vm.platform, spa);
    if (status !== 0) return false;
    vm.setPrivate(gpa, toPrivate);
  }
  return true;
}

/** GHCB_MSR_PSC_REQ: the response MSR value (PSC_RESP 0x015 with 0, or PSC_RESP_ERROR). */
export function pscMsr(vm: Vm, msr: bigint): bigint {
  const op = pscRequestOp(msr);
  if (op !== SNP_PAGE_STATE_PRIVATE && op !== SNP_PAGE_STATE_SHARED) return GHCB_MSR_PSC_RESP_ERROR;
  const gfn = Number(pscRequestGfn(msr));
  return mapGpaRange(vm, gfn, 1, op === SNP_PAGE_STATE_PRIVATE) ? GHCB_MSR.PSC_RESP : GHCB_MSR_PSC_RESP_ERROR;
}

/**
 * struct psc_hdr (u16 cur_entry, u16 end_entry, u32 reserved) and struct psc_entry (a u64 of
 * cur_page:12, gfn:40, operation:4, pagesize:1, reserved:7) [LX] arch/x86/include/asm/sev-common.h
 */
const PSC_HDR_SIZE = 8;
const PSC_ENTRY_SIZE = 8;
const entryOffset = (idx: number): number => PSC_HDR_SIZE + idx * PSC_ENTRY_SIZE;
/** Pages an entry covers: 1, or 512 for pagesize 1 (2M). */
const entryPages = (pagesize: number): number => (pagesize === 1 ? PAGES_PER_2M : 1);

interface PscEntry {
  curPage: number;
  gfn: number;
  operation: number;
  pagesize: number;
}

function readEntry(buf: DataView, idx: number): PscEntry {
  const v = buf.getBigUint64(entryOffset(idx), true);
  return {
    curPage: Number(v & 0xfffn),
    gfn: Number((v >> 12n) & ((1n << 40n) - 1n)),
    operation: Number((v >> 52n) & 0xfn),
    pagesize: Number((v >> 56n) & 1n),
  };
}

function writeCurPage(buf: DataView, idx: number, curPage: number): void {
  const v = buf.getBigUint64(entryOffset(idx), true);
  buf.setBigUint64(entryOffset(idx), (v & ~0xfffn) | BigInt(curPage & 0xfff), true);
}

/**
 * snp_begin_psc over a descriptor copied from the scratch area; updates the descriptor in place
 * (hdr.cur_entry, entries' cur_page) and returns the SW_EXITINFO2 result (0 or VMGEXIT_PSC_ERROR_*).
 * Model choice: a descriptor whose end_entry lies beyond the scratch length is INVALID_HDR (KVM of
 * 6.11 would read past its buffer).
 */
export function processPsc(vm: Vm, desc: Uint8Array): bigint {
  if (desc.length < PSC_HDR_SIZE) return VMGEXIT_PSC_ERROR_INVALID_HDR;
  const buf = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
  for (;;) {
    const idxStart = buf.getUint16(0, true);
    const idxEnd = buf.getUint16(2, true);
    if (idxEnd >= VMGEXIT_PSC_MAX_COUNT || entryOffset(idxEnd + 1) > desc.length)
      return VMGEXIT_PSC_ERROR_INVALID_HDR;
    let idx = idxStart;
    let start: PscEntry | undefined;
    let npages = 0;
    let huge = false;
    let gfn = 0;
    for (; idx <= idxEnd; idx++, buf.setUint16(0, buf.getUint16(0, true) + 1, true)) {
      const e = readEntry(buf, idx);
      gfn = e.gfn;
      huge = e.pagesize === 1;
      npages = entryPages(e.pagesize);
      if (e.curPage > npages || gfn % npages !== 0) return VMGEXIT_PSC_ERROR_INVALID_ENTRY;
      if (e.curPage !== 0) {
        npages -= e.curPage;
        gfn += e.curPage;
        huge = false;
      }
      if (npages !== 0) {
        start = e;
        break;
      }
    }
    if (start === undefined || idx > idxEnd) return 0n;
    let inflight = 1;
    const first = idx;
    // Adjacent entries join the range. KVM compares with entry_start.gfn + npages, not gfn + npages:
    // after a partly done 2M entry (cur_page c) a 4K entry at entry_start.gfn + 512 - c joins, and the
    // range then ends one page past what it names. Kept as KVM has it (6.11 … mainline).
    while (++idx <= idxEnd) {
      const e = readEntry(buf, idx);
      if (
        e.operation !== start.operation ||
        e.gfn !== start.gfn + npages ||
        e.curPage !== 0 ||
        (e.pagesize === 1) !== huge
      ) {
        break;
      }
      inflight++;
      npages += entryPages(e.pagesize);
    }
    if (start.operation === VMGEXIT_PSC_OP_PRIVATE || start.operation === VMGEXIT_PSC_OP_SHARED) {
      if (!mapGpaRange(vm, gfn, npages, start.operation === VMGEXIT_PSC_OP_PRIVATE))
        return VMGEXIT_PSC_ERROR_GENERIC;
    }
    // __snp_complete_one_psc: mark the in-flight entries done and advance cur_entry.
    let i = first;
    for (; inflight > 0; inflight--, i++) writeCurPage(buf, i, entryPages(readEntry(buf, i).pagesize));
    buf.setUint16(0, i, true);
  }
}
