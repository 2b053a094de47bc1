/**
 * The per-guest context the firmware keeps in a guest's Context page ([FW] `guest_context_page_t` and
 * the `sev_guest_t` it embeds): policy, launch digest, ASID and activation, keys, VMPCKs and their
 * message counters, HOST_DATA, ID block and key digests, report IDs. The model keeps it in a
 * firmware-private map keyed by the Context page's PFN; the page itself only holds zeros for the host.
 */
import { ID_BLOCK_SIZE, IdBlockOffset } from '../attestation/id-block.js';
import { LD_SIZE } from '../measure/page-info.js';
import { u32 } from './buffers.js';
import { SnpGuestState } from './state.js';

/** ASID binding of a guest [FW SEV_GUEST_FLAGS_PENDING_FLAG / ACTIVE_FLAG]. */
export type Activation = 'inactive' | 'pending' | 'active';

export const VMPCK_SIZE = 32; // [FW] vmpck0..3[32]

export class GuestContextPage {
  /** Guest state machine: INIT -> LAUNCH (LAUNCH_START) -> RUNNING (LAUNCH_FINISH). */
  snpState: number = SnpGuestState.INIT;
  policy = 0n;
  /** ASID the guest is bound to (0 = none). */
  asid = 0;
  /** CCXs the guest is enabled on. */
  ccxs = 0;
  activation: Activation = 'inactive';
  /** GCTX.LD / GCTX.Measurement: the launch digest, 48 zero bytes at GCTX_CREATE. */
  readonly measurement = new Uint8Array(LD_SIZE);
  /** GCTX.IMD: digest of the incoming migration image. */
  readonly imd = new Uint8Array(LD_SIZE);
  imiEn = false;
  readonly vmpck: readonly [Uint8Array, Uint8Array, Uint8Array, Uint8Array] = [
    new Uint8Array(VMPCK_SIZE),
    new Uint8Array(VMPCK_SIZE),
    new Uint8Array(VMPCK_SIZE),
    new Uint8Array(VMPCK_SIZE),
  ];
  /** Message counters of VMPCK0..3: the next request must carry counter + 1 [FW msg_count0..3]. */
  readonly msgCount: [bigint, bigint, bigint, bigint] = [0n, 0n, 0n, 0n];
  readonly vmrk = new Uint8Array(32);
  readonly oek = new Uint8Array(32);
  readonly reportId = new Uint8Array(32);
  readonly reportIdMa = new Uint8Array(32);
  /** Migration agent's gctx address, or null (PADDR_INVALID). */
  migrationAgent: bigint | null = null;
  readonly hostData = new Uint8Array(32);
  idBlockEn = false;
  /** The 96-byte ID block given at LAUNCH_FINISH (zero without one). */
  readonly idBlock = new Uint8Array(ID_BLOCK_SIZE);
  readonly idKeyDigest = new Uint8Array(48);
  authorKeyEn = false;
  readonly authorKeyDigest = new Uint8Array(48);
  readonly gosvw = new Uint8Array(16);
  desiredTscKhz = 0;
  pspTscOffset = 0n;
  /** TCB at GCTX_CREATE (the committed TCB) [FW gctx->launch_tcb]. */
  launchTcb = 0n;
  vcekDis = false;
  /** Firmware version that created the context [FW current_build_id ...]. */
  readonly createdBy: { readonly apiMajor: number; readonly apiMinor: number; readonly buildId: number };

  constructor(launchTcb: bigint, createdBy: { apiMajor: number; apiMinor: number; buildId: number }) {
    this.launchTcb = launchTcb;
    this.createdBy = Object.freeze({ ...createdBy });
  }

  /** ID block fields the report and key derivation use. */
  get guestSvn(): number {
    return u32(this.idBlock, IdBlockOffset.GUEST_SVN);
  }
  get familyId(): Uint8Array {
    return this.idBlock.subarray(IdBlockOffset.FAMILY_ID, IdBlockOffset.IMAGE_ID);
  }
  get imageId(): Uint8Array {
    return this.idBlock.subarray(IdBlockOffset.IMAGE_ID, IdBlockOffset.VERSION);
  }

  /** `guest_is_inactive`: neither pending nor active. */
  get inactive(): boolean {
    return this.activation === 'inactive';
  }
}
