/**
 * Sparse system physical memory: 4 KiB pages allocated on first write, untouched memory reads as
 * zero. Plain bytes (the model does not encrypt; who may access a page is the RMP's business, checked
 * by the callers through the access checks). Not on the RMP check path.
 */
import { PAGE_SIZE } from './rmp/layout.js';

export interface SystemMemoryOptions {
  /** Bytes of system physical memory (a positive multiple of 4 KiB, at most 2^52). */
  readonly memoryBytes: number;
}

export class SystemMemory {
  readonly memoryBytes: number;
  readonly #pages = new Map<number, Uint8Array>();

  constructor(options: SystemMemoryOptions) {
    const { memoryBytes } = options;
    if (!Number.isInteger(memoryBytes) || memoryBytes <= 0 || memoryBytes % PAGE_SIZE !== 0) {
      throw new RangeError(
        `SystemMemory: memoryBytes must be a positive multiple of 4096, got ${memoryBytes}`,
      );
    }
    if (memoryBytes > 2 ** 52) throw new RangeError(`SystemMemory: memoryBytes ${memoryBytes} exceeds 2^52`);
    this.memoryBytes = memoryBytes;
  }

  /** Pages holding their own storage. */
  get allocatedPages(): number {
    return this.#pages.size;
  }

  /** Copies `length` bytes at `spa` (may cross pages). */
  read(spa: number, length: number): Uint8Array {
    this.#check(spa, length, 'read');
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const addr = spa + done;
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr - pfn * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, length - done);
      const page = this.#pages.get(pfn);
      if (page !== undefined) out.set(page.subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  /** Writes `bytes` at `spa` (may cross pages). */
  write(spa: number, bytes: Uint8Array): void {
    this.#check(spa, bytes.length, 'write');
    let done = 0;
    while (done < bytes.length) {
      const addr = spa + done;
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr - pfn * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, bytes.length - done);
      this.#page(pfn).set(bytes.subarray(done, done + n), off);
      done += n;
    }
  }

  /** Fills `length` bytes at `spa` with `value` (0 frees whole zeroed pages). */
  fill(spa: number, length: number, value = 0): void {
    this.#check(spa, length, 'fill');
    if (!Number.isInteger(value) || value < 0 || value > 0xff) {
      throw new RangeError(`SystemMemory.fill: value must be a byte, got ${value}`);
    }
    let done = 0;
    while (done < length) {
      const addr = spa + done;
      const pfn = Math.floor(addr / PAGE_SIZE);
      const off = addr - pfn * PAGE_SIZE;
      const n = Math.min(PAGE_SIZE - off, length - done);
      if (value === 0 && n === PAGE_SIZE) this.#pages.delete(pfn);
      else if (value !== 0 || this.#pages.has(pfn)) this.#page(pfn).fill(value, off, off + n);
      done += n;
    }
  }

  readU8(spa: number): number {
    return this.read(spa, 1)[0]!;
  }

  readU16(spa: number): number {
    const b = this.read(spa, 2);
    return new DataView(b.buffer).getUint16(0, true);
  }

  readU32(spa: number): number {
    const b = this.read(spa, 4);
    return new DataView(b.buffer).getUint32(0, true);
  }

  readU64(spa: number): bigint {
    const b = this.read(spa, 8);
    return new DataView(b.buffer).getBigUint64(0, true);
  }

  writeU8(spa: number, value: number): void {
    this.write(spa, Uint8Array.of(value & 0xff));
  }

  writeU16(spa: number, value: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, value, true);
    this.write(spa, b);
  }

  writeU32(spa: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.write(spa, b);
  }

  writeU64(spa: number, value: bigint): void {
    if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
      throw new RangeError(`SystemMemory.writeU64: value must be a u64, got ${value}`);
    }
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, value, true);
    this.write(spa, b);
  }

  #page(pfn: number): Uint8Array {
    let page = this.#pages.get(pfn);
    if (page === undefined) {
      page = new Uint8Array(PAGE_SIZE);
      this.#pages.set(pfn, page);
    }
    return page;
  }

  #check(spa: number, length: number, what: string): void {
    if (!Number.isInteger(spa) || spa < 0) {
      throw new RangeError(`SystemMemory.${what}: address must be a non-negative integer, got ${spa}`);
    }
    if (!Number.isInteger(length) || length < 0) {
      throw new RangeError(`SystemMemory.${what}: length must be a non-negative integer, got ${length}`);
    }
    if (spa + length > this.memoryBytes) {
      throw new RangeError(
        `SystemMemory.${what}: [0x${spa.toString(16)}, +0x${length.toString(16)}) is beyond system memory (0x${this.memoryBytes.toString(16)} bytes)`,
      );
    }
  }
}
