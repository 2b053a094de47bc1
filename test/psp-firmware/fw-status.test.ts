import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  COMMANDS,
  COMMANDS_BY_ID,
  isSevStatus,
  SevStatus,
  SevTioStatus,
  SnpCommandId,
  sevStatusName,
} from '../../psp-firmware/index.js';
import { bareSystem, expectStatus, initSystem } from './fw-fixture.js';

describe('firmware status table (firmware-rmp.md §D.1)', () => {
  it('holds the exact codes 0x00-0x28 with 0x1E unassigned', () => {
    const codes = Object.values(SevStatus).sort((a, b) => a - b);
    const expected = [...Array(0x29).keys()].filter((c) => c !== 0x1e);
    assert.deepEqual(codes, expected);
    assert.equal(SevStatus.INVALID_PAGE_STATE, 0x1a);
    assert.equal(SevStatus.RB_MODE_EXITED, 0x1f);
    assert.equal(SevStatus.RMP_INIT_REQUIRED, 0x20);
    assert.equal(SevStatus.INVALID_KEY, 0x27);
    assert.equal(SevStatus.SHUTDOWN_INCOMPLETE, 0x28);
    assert.ok(Object.isFrozen(SevStatus));
  });

  it('names codes, including TIO codes, and rejects what is not in the table', () => {
    assert.equal(sevStatusName(0x0b), 'BAD_MEASUREMENT');
    assert.equal(sevStatusName(SevTioStatus.IN_USE), 'IN_USE');
    assert.equal(sevStatusName(0x1e), 'UNKNOWN(0x1e)');
    assert.equal(isSevStatus(0x28), true);
    assert.equal(isSevStatus(0x1e), false);
    assert.equal(isSevStatus(0x30), false);
  });
});

describe('command table (firmware-rmp.md §D.4)', () => {
  it('keys every row by its real Linux command id', () => {
    assert.equal(COMMANDS_BY_ID.get(0x081)?.name, 'SNP_INIT');
    assert.equal(COMMANDS_BY_ID.get(0x0a1)?.name, 'SNP_LAUNCH_UPDATE');
    assert.equal(COMMANDS_BY_ID.get(0x0ce)?.name, 'SNP_FEATURE_INFO');
    for (const c of COMMANDS) assert.equal(SnpCommandId[c.name], c.id);
    assert.equal(COMMANDS.length, new Set(COMMANDS.map((c) => c.id)).size);
  });

  it('lists buffer layouts with the Linux struct sizes', () => {
    const size = (id: number) => COMMANDS_BY_ID.get(id)?.layout?.size;
    assert.equal(size(SnpCommandId.SNP_INIT_EX), 64);
    assert.equal(size(SnpCommandId.SNP_LAUNCH_START), 0x30);
    assert.equal(size(SnpCommandId.SNP_LAUNCH_UPDATE), 0x20);
    assert.equal(size(SnpCommandId.SNP_LAUNCH_FINISH), 0x40);
    assert.equal(size(SnpCommandId.SNP_ACTIVATE), 12);
    assert.equal(size(SnpCommandId.SNP_CONFIG), 64);
    assert.equal(COMMANDS_BY_ID.get(SnpCommandId.SNP_INIT)?.layout, null);
  });

  it('lists only statuses of the table, SUCCESS first for implemented rows', () => {
    for (const c of COMMANDS) {
      for (const s of c.statuses) assert.ok(isSevStatus(s), `${c.name}: 0x${s.toString(16)}`);
      if (c.handler) assert.equal(c.statuses[0], SevStatus.SUCCESS);
      else assert.deepEqual(c.statuses, [SevStatus.UNSUPPORTED]);
    }
  });

  it('answers INVALID_COMMAND for an unknown id and UNSUPPORTED for a real unmodelled command', () => {
    const { fw } = initSystem();
    expectStatus(fw, fw.command(0x0ff), SevStatus.INVALID_COMMAND);
    assert.equal(fw.lastError?.layer, 'firmware');
    assert.equal(fw.lastError?.statusName, 'INVALID_COMMAND');
    expectStatus(fw, fw.command(0x001), SevStatus.INVALID_COMMAND, 'legacy SEV INIT');
    expectStatus(fw, fw.command(SnpCommandId.SNP_PAGE_MOVE, new Uint8Array(64)), SevStatus.UNSUPPORTED);
    assert.match(fw.lastError?.reason ?? '', /does not model/);
    for (const c of COMMANDS.filter((r) => !r.handler)) {
      expectStatus(fw, fw.command(c.id, new Uint8Array(64)), SevStatus.UNSUPPORTED, c.name);
    }
  });

  it("each implemented row's platform state is the one its handler requires (INVALID_PLATFORM_STATE elsewhere)", () => {
    // A well-formed buffer: zeros (no reserved bit set, INIT_EX without INIT_RMP), length fields right.
    const lengthPrefixed = new Set([
      'SNP_SHUTDOWN_EX',
      'SNP_PAGE_SET_STATE',
      'SNP_COMMIT',
      'SNP_FEATURE_INFO',
    ]);
    const buffer = (c: (typeof COMMANDS)[number]) => {
      const b = new Uint8Array(c.layout?.size ?? 0);
      if (lengthPrefixed.has(c.name)) new DataView(b.buffer).setUint32(0, b.length, true);
      return b;
    };
    const rows = COMMANDS.filter((c) => c.handler !== null);
    assert.deepEqual(
      [...new Set(rows.map((c) => c.platform))].sort(),
      ['INIT', 'UNINIT', 'any'],
      'every requirement is exercised',
    );
    for (const c of rows) {
      for (const [state, fw] of [
        ['UNINIT', bareSystem().fw],
        ['INIT', initSystem().fw],
      ] as const) {
        const status = fw.command(c.id, buffer(c));
        const refused = c.platform !== 'any' && c.platform !== state;
        assert.equal(
          status === SevStatus.INVALID_PLATFORM_STATE,
          refused,
          `${c.name} (row: ${c.platform}) in ${state}: ${sevStatusName(status)} ${fw.lastError?.reason ?? ''}`,
        );
      }
    }
  });

  it('refuses a buffer shorter than the struct with a RangeError naming the struct', () => {
    const { fw } = bareSystem();
    assert.throws(
      () => fw.command(SnpCommandId.SNP_LAUNCH_START, new Uint8Array(3)),
      /SNP_LAUNCH_START \(0xa0\): buffer is 3 bytes, struct sev_data_snp_launch_start needs 48/,
    );
  });

  it('clears lastError after a success', () => {
    const { fw } = bareSystem();
    fw.command(0x0ff);
    assert.notEqual(fw.lastError, null);
    expectStatus(fw, fw.dfFlush(), SevStatus.WBINVD_REQUIRED);
    fw.noteWbinvd();
    expectStatus(fw, fw.dfFlush(), SevStatus.SUCCESS);
    assert.equal(fw.lastError, null);
  });
});
