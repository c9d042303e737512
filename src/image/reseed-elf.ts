/**
 * /usr/lib/banger/reseed: a static x86-64 ELF that makes the guest kernel reseed its CRNG now.
 * Linux 6.1 reseeds only on a timer (up to 60 s) or on ioctl(RNDRESEEDCRNG); writing to
 * /dev/urandom only mixes the input pool, so two forks of one snapshot would read identical
 * /dev/urandom streams until then. Generated here so images need no C compiler.
 *
 * The program (exit 0 on success, 1 when open or the ioctl fails, e.g. without CAP_SYS_ADMIN):
 *   open("/dev/urandom", O_RDONLY); ioctl(fd, RNDRESEEDCRNG); exit(status)
 */

export const RNDRESEEDCRNG = 0x5207;
export const SYS_OPEN = 2;
export const SYS_IOCTL = 16;
export const SYS_EXIT = 60;
/** Where the program is loaded (the usual base of non-PIE x86-64 executables). */
export const RESEED_BASE = 0x400000;

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const PATH = Buffer.from("/dev/urandom\0", "latin1");

const le32 = (n: number): number[] => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];

/** The instructions; byte offsets within the code in the comments. rel8/rel32 are computed by reseedCode. */
function reseedCode(): Buffer {
  const failAt = 47;
  const pathAt = 59;
  const code = [
    0xb8, ...le32(SYS_OPEN), //        0: mov eax, 2            ; open
    0x48, 0x8d, 0x3d, ...le32(pathAt - 12), // 5: lea rdi, [rip+path]
    0x31, 0xf6, //                    12: xor esi, esi         ; O_RDONLY
    0x0f, 0x05, //                    14: syscall
    0x85, 0xc0, //                    16: test eax, eax
    0x78, failAt - 20, //             18: js fail              ; open failed
    0x89, 0xc7, //                    20: mov edi, eax         ; fd
    0xbe, ...le32(RNDRESEEDCRNG), //  22: mov esi, 0x5207      ; RNDRESEEDCRNG
    0xb8, ...le32(SYS_IOCTL), //      27: mov eax, 16          ; ioctl
    0x0f, 0x05, //                    32: syscall
    0x85, 0xc0, //                    34: test eax, eax
    0x75, failAt - 38, //             36: jnz fail
    0x31, 0xff, //                    38: xor edi, edi         ; status 0
    0xb8, ...le32(SYS_EXIT), //       40: mov eax, 60          ; exit
    0x0f, 0x05, //                    45: syscall
    0xbf, ...le32(1), //              47: fail: mov edi, 1     ; status 1
    0xb8, ...le32(SYS_EXIT), //       52: mov eax, 60          ; exit
    0x0f, 0x05, //                    57: syscall
  ];
  if (code.length !== pathAt) throw new Error(`reseed code is ${code.length} bytes, labels assume ${pathAt}`);
  return Buffer.concat([Buffer.from(code), PATH]);
}

/** The whole file: ELF header, one PT_LOAD (R+X) mapping the file at RESEED_BASE, then the code. */
export function reseedElf(): Buffer {
  const code = reseedCode();
  const codeOff = EHDR_SIZE + PHDR_SIZE;
  const size = codeOff + code.length;
  const ehdr = Buffer.alloc(EHDR_SIZE);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]).copy(ehdr, 0); // ELF64, little-endian, version 1, SysV ABI
  ehdr.writeUInt16LE(2, 16); // e_type ET_EXEC
  ehdr.writeUInt16LE(62, 18); // e_machine EM_X86_64
  ehdr.writeUInt32LE(1, 20); // e_version
  ehdr.writeBigUInt64LE(BigInt(RESEED_BASE + codeOff), 24); // e_entry
  ehdr.writeBigUInt64LE(BigInt(EHDR_SIZE), 32); // e_phoff
  ehdr.writeBigUInt64LE(0n, 40); // e_shoff: no sections
  ehdr.writeUInt32LE(0, 48); // e_flags
  ehdr.writeUInt16LE(EHDR_SIZE, 52); // e_ehsize
  ehdr.writeUInt16LE(PHDR_SIZE, 54); // e_phentsize
  ehdr.writeUInt16LE(1, 56); // e_phnum
  ehdr.writeUInt16LE(64, 58); // e_shentsize
  ehdr.writeUInt16LE(0, 60); // e_shnum
  ehdr.writeUInt16LE(0, 62); // e_shstrndx
  const phdr = Buffer.alloc(PHDR_SIZE);
  phdr.writeUInt32LE(1, 0); // p_type PT_LOAD
  phdr.writeUInt32LE(5, 4); // p_flags R+X
  phdr.writeBigUInt64LE(0n, 8); // p_offset
  phdr.writeBigUInt64LE(BigInt(RESEED_BASE), 16); // p_vaddr
  phdr.writeBigUInt64LE(BigInt(RESEED_BASE), 24); // p_paddr
  phdr.writeBigUInt64LE(BigInt(size), 32); // p_filesz
  phdr.writeBigUInt64LE(BigInt(size), 40); // p_memsz
  phdr.writeBigUInt64LE(0x1000n, 48); // p_align
  return Buffer.concat([ehdr, phdr, code]);
}
