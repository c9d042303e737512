import { open } from "node:fs/promises";

/**
 * Just enough of an ELF64 reader to check that a file is a kernel
 * Firecracker can boot (x86-64 ET_EXEC with the Xen PVH entry note) and that
 * a busybox is static (no PT_INTERP). Reads only the header, the program
 * headers and the note segments, never the whole file.
 */

export const ET_EXEC = 2;
export const EM_X86_64 = 62;
export const PT_LOAD = 1;
export const PT_INTERP = 3;
export const PT_NOTE = 4;
/** XEN_ELFNOTE_PHYS32_ENTRY: the 32-bit PVH entry point Firecracker/qemu jump to. */
export const XEN_ELFNOTE_PHYS32_ENTRY = 18;

export interface ElfProgramHeader {
  readonly type: number;
  readonly flags: number;
  readonly offset: bigint;
  readonly vaddr: bigint;
  readonly paddr: bigint;
  readonly filesz: bigint;
  readonly memsz: bigint;
}

export interface ElfNote {
  readonly name: string;
  readonly type: number;
  readonly desc: Buffer;
}

export interface ElfInfo {
  readonly type: number;
  readonly machine: number;
  readonly entry: bigint;
  readonly programHeaders: readonly ElfProgramHeader[];
  readonly notes: readonly ElfNote[];
}

/** Random access to the bytes being parsed; lets the same parser serve a Buffer or a file. */
export type ByteSource = (offset: number, length: number) => Promise<Buffer>;

export class ElfError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ElfError";
  }
}

/** Note segments larger than this are not notes a kernel carries; refusing them bounds memory on garbage input. */
const MAX_NOTE_SEGMENT = 1024 * 1024;
const MAX_PROGRAM_HEADERS = 256;

function toSafeNumber(v: bigint, what: string): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError(`ELF ${what} ${v} is out of range`);
  return Number(v);
}

export function bufferSource(buf: Buffer): ByteSource {
  return (offset, length) => {
    if (offset < 0 || offset + length > buf.length) return Promise.reject(new ElfError(`ELF read past end of data (offset ${offset}, length ${length}, size ${buf.length})`));
    return Promise.resolve(buf.subarray(offset, offset + length));
  };
}

export function parseNotes(segment: Buffer): ElfNote[] {
  const notes: ElfNote[] = [];
  let off = 0;
  const align4 = (n: number): number => (n + 3) & ~3;
  while (off + 12 <= segment.length) {
    const namesz = segment.readUInt32LE(off);
    const descsz = segment.readUInt32LE(off + 4);
    const type = segment.readUInt32LE(off + 8);
    const nameStart = off + 12;
    const descStart = nameStart + align4(namesz);
    const end = descStart + align4(descsz);
    if (namesz > segment.length || descsz > segment.length || descStart + descsz > segment.length) throw new ElfError("ELF note runs past its segment");
    const name = segment.toString("latin1", nameStart, nameStart + namesz).replace(/\0+$/, "");
    notes.push({ name, type, desc: segment.subarray(descStart, descStart + descsz) });
    off = end;
  }
  return notes;
}

export async function parseElf(read: ByteSource): Promise<ElfInfo> {
  let ident: Buffer;
  try {
    ident = await read(0, 64);
  } catch {
    throw new ElfError("not an ELF file: shorter than an ELF64 header");
  }
  if (ident.readUInt32BE(0) !== 0x7f454c46) throw new ElfError("not an ELF file: bad magic");
  if (ident[4] !== 2) throw new ElfError("not an ELF64 file (EI_CLASS is not ELFCLASS64)");
  if (ident[5] !== 1) throw new ElfError("not a little-endian ELF file");
  const type = ident.readUInt16LE(16);
  const machine = ident.readUInt16LE(18);
  const entry = ident.readBigUInt64LE(24);
  const phoff = toSafeNumber(ident.readBigUInt64LE(32), "program header offset");
  const phentsize = ident.readUInt16LE(54);
  const phnum = ident.readUInt16LE(56);
  if (phnum > MAX_PROGRAM_HEADERS) throw new ElfError(`ELF has ${phnum} program headers (more than ${MAX_PROGRAM_HEADERS})`);
  if (phnum > 0 && phentsize < 56) throw new ElfError(`ELF program header size ${phentsize} is too small`);
  const programHeaders: ElfProgramHeader[] = [];
  if (phnum > 0) {
    const table = await read(phoff, phentsize * phnum);
    for (let i = 0; i < phnum; i++) {
      const b = i * phentsize;
      programHeaders.push({
        type: table.readUInt32LE(b),
        flags: table.readUInt32LE(b + 4),
        offset: table.readBigUInt64LE(b + 8),
        vaddr: table.readBigUInt64LE(b + 16),
        paddr: table.readBigUInt64LE(b + 24),
        filesz: table.readBigUInt64LE(b + 32),
        memsz: table.readBigUInt64LE(b + 40),
      });
    }
  }
  const notes: ElfNote[] = [];
  for (const ph of programHeaders) {
    if (ph.type !== PT_NOTE) continue;
    const size = toSafeNumber(ph.filesz, "note size");
    if (size > MAX_NOTE_SEGMENT) throw new ElfError(`ELF note segment of ${size} bytes is implausibly large`);
    notes.push(...parseNotes(await read(toSafeNumber(ph.offset, "note offset"), size)));
  }
  return { type, machine, entry, programHeaders, notes };
}

/** Parse an ELF file reading only the ranges needed. */
export async function readElfFile(path: string): Promise<ElfInfo> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    return await parseElf(async (offset, length) => {
      if (offset < 0 || offset + length > size) throw new ElfError(`${path}: ELF data past end of file (offset ${offset}, length ${length}, size ${size})`);
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new ElfError(`${path}: short read`);
      return buf;
    });
  } finally {
    await fh.close();
  }
}

/** The PVH entry point, or undefined when the kernel has no Xen PHYS32_ENTRY note. */
export function pvhEntry(info: ElfInfo): number | undefined {
  const note = info.notes.find((n) => n.name === "Xen" && n.type === XEN_ELFNOTE_PHYS32_ENTRY);
  if (note === undefined || note.desc.length < 4) return undefined;
  return note.desc.readUInt32LE(0);
}

/**
 * Throw an ElfError explaining what is wrong unless this is a kernel every
 * Firecracker release can boot on x86_64: ELF64, x86-64, ET_EXEC, with the PVH note.
 */
export function assertBootableVmlinux(info: ElfInfo, what: string): void {
  if (info.machine !== EM_X86_64) throw new ElfError(`${what}: ELF machine ${info.machine} is not x86-64 (${EM_X86_64})`);
  if (info.type !== ET_EXEC) throw new ElfError(`${what}: ELF type ${info.type} is not ET_EXEC (${ET_EXEC})`);
  if (!info.programHeaders.some((p) => p.type === PT_LOAD)) throw new ElfError(`${what}: ELF has no loadable segment`);
  if (pvhEntry(info) === undefined) throw new ElfError(`${what}: no Xen PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY); the kernel needs CONFIG_PVH=y`);
}

/** True when the ELF needs no dynamic loader (safe to copy alone into an initrd or tiny rootfs). */
export function isStatic(info: ElfInfo): boolean {
  return !info.programHeaders.some((p) => p.type === PT_INTERP);
}
