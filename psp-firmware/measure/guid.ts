/**
 * EFI GUIDs in their on-disk form. OVMF's footer table, the SEV hashes table and QEMU store GUIDs
 * the way EFI_GUID sits in memory: the first three fields little-endian, the last eight bytes as
 * written (Python `uuid.UUID(...).bytes_le`, as sev-snp-measure uses).
 */

const GUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** The 16 bytes of `text` (canonical lowercase 8-4-4-4-12 form) in EFI (bytes_le) order. */
export function guidToBytes(text: string): Buffer {
  if (!GUID_TEXT.test(text)) throw new RangeError(`not a canonical lowercase GUID: '${text}'`);
  const plain = Buffer.from(text.replaceAll('-', ''), 'hex');
  const out = Buffer.from(plain);
  out.writeUInt32LE(plain.readUInt32BE(0), 0);
  out.writeUInt16LE(plain.readUInt16BE(4), 4);
  out.writeUInt16LE(plain.readUInt16BE(6), 6);
  return out;
}

/** Canonical text of the EFI-ordered GUID at `bytes[offset .. offset + 16)`. */
export function guidFromBytes(bytes: Uint8Array, offset: number): string {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset + offset, 16);
  const h = (n: number, width: number) => n.toString(16).padStart(width, '0');
  const tail = b.subarray(8, 16).toString('hex');
  return `${h(b.readUInt32LE(0), 8)}-${h(b.readUInt16LE(4), 4)}-${h(b.readUInt16LE(6), 4)}-${tail.slice(0, 4)}-${tail.slice(4)}`;
}
