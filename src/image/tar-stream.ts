/**
 * A streaming tar reader (ustar, GNU long names, PAX headers with xattrs).
 * Image layers are untrusted: parsing them here, as the owner and without a
 * host `tar`, means no extraction step ever interprets a name, a link or an
 * owner on the host; oci-tree.ts decides what each entry may become.
 */

export type TarEntryType = "file" | "dir" | "symlink" | "hardlink" | "char" | "block" | "fifo";

export interface TarEntry {
  readonly name: string;
  readonly type: TarEntryType;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Seconds since the epoch. */
  readonly mtime: number;
  readonly linkname: string;
  readonly size: number;
  /** From PAX `SCHILY.xattr.NAME` records. */
  readonly xattrs: ReadonlyMap<string, Buffer>;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarFormatError";
  }
}

/** Pulls exact byte counts out of a chunk stream. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private done = false;
  /** Bytes consumed so far: the offset of the next byte. */
  position = 0;

  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.buf.length < n && !this.done) {
      const r = await this.it.next();
      if (r.done === true) this.done = true;
      else this.buf = this.buf.length === 0 ? r.value : Buffer.concat([this.buf, r.value]);
    }
  }

  /** Exactly n bytes, or fewer only at the end of the stream. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(out.length);
    this.position += out.length;
    return out;
  }

  /** n bytes as they arrive (a file body), without holding them all. */
  async *chunks(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0) await this.fill(1);
      if (this.buf.length === 0) throw new TarFormatError("archive ends inside a file");
      const out = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(out.length);
      this.position += out.length;
      left -= out.length;
      yield out;
    }
  }

  async skip(n: number): Promise<void> {
    const it = this.chunks(n);
    while ((await it.next()).done !== true) { /* discarded */ }
  }
}

const BLOCK = 512;

function cstring(b: Buffer, off: number, len: number): string {
  const s = b.subarray(off, off + len);
  const z = s.indexOf(0);
  return (z === -1 ? s : s.subarray(0, z)).toString("utf8");
}

/** Octal (NUL/space terminated) or GNU base-256 (high bit set) numbers. */
function num(b: Buffer, off: number, len: number, what: string): number {
  const f = b.subarray(off, off + len);
  if (((f[0] ?? 0) & 0x80) !== 0) {
    let v = (f[0] ?? 0) & 0x7f;
    for (let i = 1; i < f.length; i++) v = v * 256 + (f[i] ?? 0);
    if (!Number.isSafeInteger(v)) throw new TarFormatError(`${what} too large`);
    return v;
  }
  const s = cstring(b, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad ${what} field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] ?? 0);
  return sum === num(h, 148, 8, "checksum");
}

/** PAX records: "LEN key=value\n", LEN counting the whole record. */
export function parsePax(data: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  let i = 0;
  while (i < data.length) {
    const sp = data.indexOf(0x20, i);
    if (sp === -1) break;
    const len = Number(data.subarray(i, sp).toString("ascii"));
    if (!Number.isInteger(len) || len <= sp - i || i + len > data.length) throw new TarFormatError("bad PAX record length");
    const rec = data.subarray(sp + 1, i + len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) throw new TarFormatError("PAX record without '='");
    out.set(rec.subarray(0, eq).toString("utf8"), Buffer.from(rec.subarray(eq + 1)));
    i += len;
  }
  return out;
}

const TYPES: Record<string, TarEntryType> = {
  "0": "file", "\0": "file", "7": "file", "1": "hardlink", "2": "symlink", "3": "char", "4": "block", "5": "dir", "6": "fifo",
};

/** Longest metadata record (PAX or GNU long name) we buffer: names are short, xattrs small. */
const MAX_META_BYTES = 1024 * 1024;

/**
 * Yields each entry with its body and the body's byte offset in the archive; the body is read
 * fully or not at all (it is then skipped) before the next entry comes.
 */
export async function* readTar(source: AsyncIterable<Buffer>): AsyncGenerator<{ entry: TarEntry; body: AsyncIterable<Buffer>; offset: number }> {
  const r = new ByteReader(source[Symbol.asyncIterator]());
  let pax = new Map<string, Buffer>();
  let globalPax = new Map<string, Buffer>();
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const h = await r.read(BLOCK);
    if (h.length === 0) return;
    if (h.length < BLOCK) throw new TarFormatError("archive ends inside a header");
    if (h.every((b) => b === 0)) return;
    if (!checksumOk(h)) throw new TarFormatError(`bad header checksum at byte ${r.position - BLOCK}`);
    const flag = String.fromCharCode(h[156] ?? 0);
    const size = num(h, 124, 12, "size");
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (flag === "x" || flag === "g" || flag === "L" || flag === "K") {
      if (size > MAX_META_BYTES) throw new TarFormatError(`metadata record of ${size} bytes is too large`);
      const data = await r.read(padded);
      if (data.length < padded) throw new TarFormatError("archive ends inside a metadata record");
      const body = data.subarray(0, size);
      if (flag === "x") pax = parsePax(body);
      else if (flag === "g") globalPax = new Map([...globalPax, ...parsePax(body)]);
      else if (flag === "L") longName = cstring(body, 0, body.length);
      else longLink = cstring(body, 0, body.length);
      continue;
    }
    const type = TYPES[flag];
    const meta = new Map([...globalPax, ...pax]);
    const paxNum = (k: string): number | undefined => {
      const v = meta.get(k)?.toString("utf8");
      if (v === undefined) return undefined;
      const n = Number(v.split(".")[0]);
      if (!Number.isSafeInteger(n) || n < 0) throw new TarFormatError(`bad PAX ${k} ${JSON.stringify(v)}`);
      return n;
    };
    // POSIX ustar only: GNU's "ustar  " header keeps atime/ctime where ustar has the name prefix.
    const ustar = h.subarray(257, 263).toString("binary") === "ustar\0";
    const prefix = ustar ? cstring(h, 345, 155) : "";
    const name = meta.get("path")?.toString("utf8") ?? longName ?? (prefix === "" ? cstring(h, 0, 100) : `${prefix}/${cstring(h, 0, 100)}`);
    const linkname = meta.get("linkpath")?.toString("utf8") ?? longLink ?? cstring(h, 157, 100);
    const realSize = paxNum("size") ?? size;
    const realPadded = Math.ceil(realSize / BLOCK) * BLOCK;
    const xattrs = new Map<string, Buffer>();
    for (const [k, v] of meta) if (k.startsWith("SCHILY.xattr.")) xattrs.set(k.slice("SCHILY.xattr.".length), v);
    pax = new Map();
    longName = undefined;
    longLink = undefined;
    if (type === undefined) throw new TarFormatError(`entry ${JSON.stringify(name)} has unsupported type ${JSON.stringify(flag)}`);
    const bodySize = type === "file" ? realSize : 0;
    const entry: TarEntry = {
      name, type, linkname, xattrs,
      mode: num(h, 100, 8, "mode") & 0o7777,
      uid: paxNum("uid") ?? num(h, 108, 8, "uid"),
      gid: paxNum("gid") ?? num(h, 116, 8, "gid"),
      mtime: paxNum("mtime") ?? num(h, 136, 12, "mtime"),
      size: bodySize,
    };
    let consumed = false;
    const body: AsyncIterable<Buffer> = {
      [Symbol.asyncIterator]: () => {
        if (consumed) throw new Error("internal: tar entry body read twice");
        consumed = true;
        return r.chunks(bodySize);
      },
    };
    yield { entry, body, offset: r.position };
    if (!consumed) await r.skip(bodySize);
    // Anything past the body (a non-file's data, or padding) is not part of the entry.
    const rest = (type === "file" ? realPadded : Math.ceil(realSize / BLOCK) * BLOCK) - bodySize;
    await r.skip(rest);
  }
}
