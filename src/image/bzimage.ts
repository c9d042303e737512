import { readFile } from "node:fs/promises";

/**
 * Extract the uncompressed ELF vmlinux from an x86 bzImage whose payload is
 * LZ4-compressed (Debian's kernels: CONFIG_KERNEL_LZ4=y). Firecracker on
 * x86_64 boots only ELF kernels, while distros ship only bzImages; this turns
 * the one into the other with no kernel build and no external tool.
 */

/** The legacy LZ4 frame magic the kernel's "lz4 -l" payload starts with (02 21 4c 18 on disk). */
export const LZ4_LEGACY_MAGIC = 0x184c2102;
/** Legacy frames cut the input into independent blocks of at most 8 MiB uncompressed. */
const LEGACY_BLOCK_MAX = 8 * 1024 * 1024;
/** A vmlinux bigger than this is not a kernel; refusing it bounds memory on hostile input. */
const MAX_VMLINUX = 1024 * 1024 * 1024;

export class KernelFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KernelFormatError";
  }
}

export interface BzImagePayload {
  /** The compressed payload (starting at the compression magic, without the trailing size). */
  readonly compressed: Buffer;
  /** Uncompressed size the kernel recorded after the payload. */
  readonly uncompressedSize: number;
}

/**
 * Locate the payload via the boot protocol header (payload_offset/length,
 * protocol >= 2.08) rather than by scanning for the magic, so a stray byte
 * pattern in the setup code cannot be mistaken for it.
 */
export function findPayload(bz: Buffer): BzImagePayload {
  if (bz.length < 0x250 || bz.toString("latin1", 0x202, 0x206) !== "HdrS") {
    throw new KernelFormatError("not an x86 bzImage (no 'HdrS' boot header)");
  }
  const version = bz.readUInt16LE(0x206);
  if (version < 0x208) throw new KernelFormatError(`bzImage boot protocol ${version.toString(16)} is older than 2.08 (no payload fields)`);
  const setupSects = bz[0x1f1] === 0 ? 4 : (bz[0x1f1] ?? 4);
  const pmStart = (setupSects + 1) * 512;
  const payloadOffset = bz.readUInt32LE(0x248);
  const payloadLength = bz.readUInt32LE(0x24c);
  const start = pmStart + payloadOffset;
  const end = start + payloadLength;
  if (payloadLength < 8 || end > bz.length) throw new KernelFormatError(`bzImage payload (offset ${start}, length ${payloadLength}) lies outside the ${bz.length}-byte file`);
  if (bz.readUInt32LE(start) !== LZ4_LEGACY_MAGIC) {
    const magic = bz.subarray(start, start + 4).toString("hex");
    throw new KernelFormatError(`bzImage payload is not LZ4 (magic ${magic}, want 02214c18); only LZ4 kernels (CONFIG_KERNEL_LZ4) can be converted to a vmlinux — pass an ELF vmlinux instead`);
  }
  // The kernel's build appends the uncompressed size (LE u32) to the compressed stream.
  return { compressed: bz.subarray(start, end - 4), uncompressedSize: bz.readUInt32LE(end - 4) };
}

/** Decode one raw LZ4 block from src[ip, end) into dst at op; returns the new op. */
function decodeBlock(src: Buffer, ip: number, end: number, dst: Buffer, op: number): number {
  const dstStart = op;
  while (ip < end) {
    const token = src[ip++] ?? 0;
    let lit = token >>> 4;
    if (lit === 15) {
      let b: number;
      do {
        if (ip >= end) throw new KernelFormatError("corrupt LZ4 block: literal length runs past the block");
        b = src[ip++] ?? 0;
        lit += b;
      } while (b === 255);
    }
    if (ip + lit > end || op + lit > dst.length) throw new KernelFormatError("corrupt LZ4 block: literals overflow");
    src.copy(dst, op, ip, ip + lit);
    ip += lit;
    op += lit;
    if (ip >= end) break; // the last sequence carries literals only
    if (ip + 2 > end) throw new KernelFormatError("corrupt LZ4 block: truncated match offset");
    const offset = (src[ip] ?? 0) | ((src[ip + 1] ?? 0) << 8);
    ip += 2;
    if (offset === 0 || op - offset < dstStart) throw new KernelFormatError("corrupt LZ4 block: match offset out of range");
    let len = token & 15;
    if (len === 15) {
      let b: number;
      do {
        if (ip >= end) throw new KernelFormatError("corrupt LZ4 block: match length runs past the block");
        b = src[ip++] ?? 0;
        len += b;
      } while (b === 255);
    }
    len += 4;
    if (op + len > dst.length) throw new KernelFormatError("corrupt LZ4 block: match overflows the output");
    let from = op - offset;
    if (offset >= len) {
      dst.copyWithin(op, from, from + len);
      op += len;
    } else {
      // Overlapping match (a run): must copy forward byte by byte.
      for (let i = 0; i < len; i++) dst[op++] = dst[from++] ?? 0;
    }
  }
  return op;
}

/** Decompress a legacy LZ4 frame ("lz4 -l", what the kernel build uses). */
export function decompressLz4Legacy(data: Buffer, expectedSize: number): Buffer {
  if (data.length < 4 || data.readUInt32LE(0) !== LZ4_LEGACY_MAGIC) throw new KernelFormatError("not a legacy LZ4 frame");
  if (!Number.isInteger(expectedSize) || expectedSize <= 0 || expectedSize > MAX_VMLINUX) throw new KernelFormatError(`implausible uncompressed kernel size ${expectedSize}`);
  const out = Buffer.alloc(expectedSize);
  let ip = 4;
  let op = 0;
  while (ip + 4 <= data.length) {
    const blockSize = data.readUInt32LE(ip);
    if (blockSize === LZ4_LEGACY_MAGIC) { ip += 4; continue; } // concatenated frame
    ip += 4;
    if (blockSize === 0 || ip + blockSize > data.length) throw new KernelFormatError(`corrupt LZ4 stream: block of ${blockSize} bytes at offset ${ip - 4} runs past the payload`);
    const before = op;
    op = decodeBlock(data, ip, ip + blockSize, out, op);
    if (op - before > LEGACY_BLOCK_MAX) throw new KernelFormatError("corrupt LZ4 stream: block larger than 8 MiB");
    ip += blockSize;
  }
  if (op !== expectedSize) throw new KernelFormatError(`LZ4 payload decompressed to ${op} bytes, the bzImage says ${expectedSize}`);
  return out;
}

/** bzImage bytes -> vmlinux bytes (validate the result with elf.ts). */
export function extractVmlinux(bz: Buffer): Buffer {
  const payload = findPayload(bz);
  return decompressLz4Legacy(payload.compressed, payload.uncompressedSize);
}

export async function extractVmlinuxFile(bzImagePath: string): Promise<Buffer> {
  return extractVmlinux(await readFile(bzImagePath));
}

/** The kernel release ("6.1.0-56-cloud-amd64") from the bzImage's boot header kernel_version string. */
export function bzImageVersion(bz: Buffer): string {
  if (bz.length < 0x210 || bz.toString("latin1", 0x202, 0x206) !== "HdrS") throw new KernelFormatError("not an x86 bzImage (no 'HdrS' boot header)");
  const ptr = bz.readUInt16LE(0x20e);
  const start = ptr + 0x200;
  if (ptr === 0 || start >= bz.length) throw new KernelFormatError("bzImage has no kernel_version string");
  const end = bz.indexOf(0, start);
  const text = bz.toString("latin1", start, end < 0 ? Math.min(bz.length, start + 256) : end);
  const version = text.split(" ")[0] ?? "";
  if (!/^[A-Za-z0-9._+-]{1,128}$/.test(version)) throw new KernelFormatError(`bzImage kernel_version ${JSON.stringify(text.slice(0, 64))} is not a release name`);
  return version;
}
