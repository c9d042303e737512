/**
 * A minimal writer for the "newc" cpio format, the only format the Linux
 * kernel unpacks as an initramfs. Written in TS so building an initrd needs
 * no shell pipeline, no root (device nodes and root ownership are just header
 * fields here) and no host cpio binary.
 */

export type CpioEntry =
  | { readonly kind: "dir"; readonly path: string; readonly mode?: number }
  | { readonly kind: "file"; readonly path: string; readonly data: Buffer; readonly mode?: number }
  | { readonly kind: "symlink"; readonly path: string; readonly target: string }
  | { readonly kind: "chardev"; readonly path: string; readonly major: number; readonly minor: number; readonly mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

function hex8(n: number): string {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio header field out of range: ${n}`);
  return n.toString(16).padStart(8, "0");
}

function pad4(length: number): Buffer {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function header(ino: number, mode: number, nlink: number, fileSize: number, rdevMajor: number, rdevMinor: number, name: string): Buffer {
  const nameBytes = Buffer.from(`${name}\0`, "utf8");
  // All entries are owned by root (uid/gid 0) and dated 0, so the archive is
  // reproducible and correct even when built by a non-root owner.
  const fields = [ino, mode, 0, 0, nlink, 0, fileSize, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0];
  const head = Buffer.from(`070701${fields.map(hex8).join("")}`, "ascii");
  return Buffer.concat([head, nameBytes, pad4(head.length + nameBytes.length)]);
}

function normalizeName(path: string): string {
  const name = path.replace(/^\/+/, "");
  if (name === "" || name.split("/").some((c) => c === "" || c === "." || c === "..")) {
    throw new Error(`invalid cpio path ${JSON.stringify(path)}: must be a relative path without empty, '.' or '..' components`);
  }
  return name;
}

/** Serialize entries (parents must come before their children) into one newc archive. */
export function writeCpio(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  const seen = new Set<string>();
  for (const entry of entries) {
    const name = normalizeName(entry.path);
    if (seen.has(name)) throw new Error(`duplicate cpio entry ${name}`);
    seen.add(name);
    const parent = name.includes("/") ? name.slice(0, name.lastIndexOf("/")) : undefined;
    if (parent !== undefined && !seen.has(parent)) throw new Error(`cpio entry ${name} comes before its directory ${parent}`);
    switch (entry.kind) {
      case "dir":
        parts.push(header(ino++, S_IFDIR | (entry.mode ?? 0o755), 2, 0, 0, 0, name));
        break;
      case "file":
        parts.push(header(ino++, S_IFREG | (entry.mode ?? 0o644), 1, entry.data.length, 0, 0, name), entry.data, pad4(entry.data.length));
        break;
      case "symlink": {
        const target = Buffer.from(entry.target, "utf8");
        parts.push(header(ino++, S_IFLNK | 0o777, 1, target.length, 0, 0, name), target, pad4(target.length));
        break;
      }
      case "chardev":
        parts.push(header(ino++, S_IFCHR | (entry.mode ?? 0o600), 1, 0, entry.major, entry.minor, name));
        break;
    }
  }
  parts.push(header(0, 0, 1, 0, 0, 0, "TRAILER!!!"));
  return Buffer.concat(parts);
}

/** One parsed entry; used by tests and by `image show` to inspect initrds. */
export interface CpioRecord {
  readonly name: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
  readonly data: Buffer;
}

/** Parse a newc archive (uncompressed). Throws on anything malformed. */
export function readCpio(archive: Buffer): CpioRecord[] {
  const out: CpioRecord[] = [];
  let off = 0;
  for (;;) {
    if (off + 110 > archive.length) throw new Error("truncated cpio archive (no TRAILER!!!)");
    const magic = archive.toString("ascii", off, off + 6);
    if (magic !== "070701") throw new Error(`bad cpio magic ${JSON.stringify(magic)} at offset ${off}`);
    const field = (i: number): number => Number.parseInt(archive.toString("ascii", off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const fileSize = field(6);
    const nameSize = field(11);
    const nameStart = off + 110;
    const name = archive.toString("utf8", nameStart, nameStart + nameSize - 1);
    let dataStart = nameStart + nameSize;
    dataStart += (4 - (dataStart % 4)) % 4;
    if (name === "TRAILER!!!") return out;
    if (dataStart + fileSize > archive.length) throw new Error(`truncated cpio entry ${name}`);
    out.push({ name, mode, uid: field(2), gid: field(3), rdevMajor: field(9), rdevMinor: field(10), data: archive.subarray(dataStart, dataStart + fileSize) });
    off = dataStart + fileSize;
    off += (4 - (off % 4)) % 4;
  }
}
