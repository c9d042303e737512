import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, stat } from "node:fs/promises";
import { posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import type { ExecDefaults } from "../model/exec-defaults.js";
import { readTar, type TarEntry } from "./tar-stream.js";

/**
 * `--from oci-archive:PATH`: a `docker save` tarball (manifest.json + layer
 * tars) or an OCI image layout (index.json -> manifest -> config + layer
 * blobs), as a directory or a tar of one. Everything in it is untrusted and
 * read by the owner; digests are checked as the bytes stream past.
 */
export class OciInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OciInputError";
  }
}

/** Files of an archive or layout, by slash-separated relative name. */
interface BlobStore {
  has(name: string): boolean;
  stream(name: string): AsyncIterable<Buffer>;
}

const MAX_JSON_BYTES = 4 * 1024 * 1024;

async function readAll(it: AsyncIterable<Buffer>, limit: number, what: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of it) {
    n += c.length;
    if (n > limit) throw new OciInputError(`${what} is larger than ${limit} bytes`);
    parts.push(c);
  }
  return Buffer.concat(parts);
}

function normal(name: string): string | undefined {
  const n = posix.normalize(name.replace(/^\/+/, ""));
  return n === "." || n.startsWith("../") || n === ".." ? undefined : n.replace(/\/$/, "");
}

async function dirStore(dir: string): Promise<BlobStore> {
  const names = new Set<string>();
  for (const n of ["index.json", "manifest.json", "oci-layout"]) if (await stat(posix.join(dir, n)).then((s) => s.isFile(), () => false)) names.add(n);
  return {
    has: (name) => names.has(name) || name.startsWith("blobs/"),
    stream: (name) => {
      const n = normal(name);
      if (n === undefined) throw new OciInputError(`${JSON.stringify(name)} points outside the image layout`);
      return createReadStream(posix.join(dir, n));
    },
  };
}

/** One pass over the outer tar records where each member's bytes are; members are then read in place. */
async function tarStore(file: string): Promise<BlobStore> {
  const files = new Map<string, { offset: number; size: number }>();
  const links = new Map<string, string>();
  for await (const { entry, offset } of readTar(createReadStream(file))) {
    const n = normal(entry.name);
    if (n === undefined) continue;
    if (entry.type === "file") files.set(n, { offset, size: entry.size });
    // docker save links a layer shared by two images to its first copy.
    else if (entry.type === "symlink") links.set(n, entry.linkname);
    else if (entry.type === "hardlink") links.set(n, `/${entry.linkname}`);
  }
  const resolve = (name: string): { offset: number; size: number } | undefined => {
    let cur = normal(name);
    for (let hops = 0; cur !== undefined && hops < 16; hops++) {
      const f = files.get(cur);
      if (f !== undefined) return f;
      const target = links.get(cur);
      if (target === undefined) return undefined;
      cur = normal(target.startsWith("/") ? target : posix.join(posix.dirname(cur), target));
    }
    return undefined;
  };
  return {
    has: (name) => resolve(name) !== undefined,
    stream: (name) => {
      const f = resolve(name);
      if (f === undefined) throw new OciInputError(`the archive has no ${name}`);
      return f.size === 0 ? Readable.from([]) : createReadStream(file, { start: f.offset, end: f.offset + f.size - 1 });
    },
  };
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function checkDigest(d: unknown, what: string): string {
  if (typeof d !== "string" || !DIGEST_RE.test(d)) throw new OciInputError(`${what} digest ${JSON.stringify(d)} is not sha256:<64 hex> (only sha256 is supported)`);
  return d;
}

const blobPath = (digest: string): string => `blobs/sha256/${digest.slice("sha256:".length)}`;
const sha256 = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

async function readJson(store: BlobStore, name: string, digest?: string): Promise<unknown> {
  if (!store.has(name)) throw new OciInputError(`the image has no ${name}`);
  const data = await readAll(store.stream(name), MAX_JSON_BYTES, name);
  if (digest !== undefined && sha256(data) !== digest) throw new OciInputError(`${name} does not match its digest ${digest}`);
  try {
    return JSON.parse(data.toString("utf8"));
  } catch {
    throw new OciInputError(`${name} is not JSON`);
  }
}

function obj(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new OciInputError(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function arr(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new OciInputError(`${what} is not a JSON array`);
  return v;
}

export interface OciLayer {
  readonly label: string;
  /** The layer's tar entries (decompressed); the digests are checked when the stream ends, and a mismatch throws. */
  entries(): AsyncGenerator<{ entry: TarEntry; body: AsyncIterable<Buffer> }>;
}

export interface OciImage {
  readonly layers: readonly OciLayer[];
  readonly defaults: ExecDefaults;
  /** From the config: e.g. "amd64". */
  readonly architecture: string | undefined;
}

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

function makeLayer(store: BlobStore, name: string, label: string, blobDigest: string | undefined, diffId: string | undefined): OciLayer {
  return {
    label,
    async *entries() {
      if (!store.has(name)) throw new OciInputError(`layer ${label}: the image has no ${name}`);
      const rawHash = createHash("sha256");
      const rawIt = store.stream(name)[Symbol.asyncIterator]();
      const first = await rawIt.next();
      const head: Buffer = first.done === true ? Buffer.alloc(0) : first.value;
      const raw = (async function* () {
        if (head.length > 0) { rawHash.update(head); yield head; }
        for (;;) {
          const n = await rawIt.next();
          if (n.done === true) return;
          rawHash.update(n.value);
          yield n.value;
        }
      })();
      const starts = (m: number[]): boolean => m.every((b, i) => head[i] === b);
      if (starts(ZSTD_MAGIC)) throw new OciInputError(`layer ${label} is zstd-compressed, which banger cannot read; save the image with gzip or uncompressed layers`);
      let data: AsyncIterable<Buffer> = raw;
      if (starts(GZIP_MAGIC)) {
        const gz = createGunzip();
        pipeline(Readable.from(raw), gz).catch((e: unknown) => gz.destroy(e instanceof Error ? e : new Error(String(e))));
        data = gz;
      }
      const diffHash = createHash("sha256");
      const dataIt = data[Symbol.asyncIterator]();
      const hashed: AsyncIterator<Buffer> = {
        next: async () => {
          const n = await dataIt.next();
          if (n.done !== true) diffHash.update(n.value);
          return n;
        },
      };
      yield* readTar({ [Symbol.asyncIterator]: () => hashed });
      // Past the tar's end marker: the digests cover the whole stream.
      while ((await hashed.next()).done !== true) { /* drain */ }
      const rawDigest = `sha256:${rawHash.digest("hex")}`;
      if (blobDigest !== undefined && rawDigest !== blobDigest) throw new OciInputError(`layer ${label} does not match its digest ${blobDigest} (got ${rawDigest})`);
      const d = `sha256:${diffHash.digest("hex")}`;
      if (diffId !== undefined && d !== diffId) throw new OciInputError(`layer ${label} does not match the config's diff_id ${diffId} (got ${d})`);
    },
  };
}

const ENV_KEY_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const USER_RE = /^(?:[a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$/;

/** User, Env and WorkingDir from an image config, checked so they can be used as `vm exec` defaults. */
export function execDefaultsFromConfig(config: Record<string, unknown>): ExecDefaults {
  const c = config["config"] === undefined || config["config"] === null ? {} : obj(config["config"], "config.config");
  const rawUser = c["User"];
  let user: string | null = null;
  if (typeof rawUser === "string" && rawUser !== "") {
    // USER name:group or uid:gid: the group comes from the user's passwd entry in the guest (setpriv --init-groups / su).
    const u = rawUser.split(":")[0] ?? "";
    if (!USER_RE.test(u)) throw new OciInputError(`the image's User ${JSON.stringify(rawUser)} is not a user name or uid`);
    user = u === "0" || u === "root" ? null : u;
  }
  const env: [string, string][] = [];
  const rawEnv = c["Env"] === undefined || c["Env"] === null ? [] : arr(c["Env"], "config.Env");
  if (rawEnv.length > 256) throw new OciInputError(`the image sets ${rawEnv.length} environment variables; at most 256 are kept`);
  for (const e of rawEnv) {
    if (typeof e !== "string" || e.length > 8192) throw new OciInputError("the image's Env holds a non-string or over-long entry");
    const eq = e.indexOf("=");
    const k = eq === -1 ? e : e.slice(0, eq);
    if (!ENV_KEY_RE.test(k) || e.includes("\0")) throw new OciInputError(`the image's Env entry ${JSON.stringify(e.slice(0, 64))} is not NAME=VALUE`);
    env.push([k, eq === -1 ? "" : e.slice(eq + 1)]);
  }
  const rawWd = c["WorkingDir"];
  let workdir: string | null = null;
  if (typeof rawWd === "string" && rawWd !== "") {
    if (!rawWd.startsWith("/") || rawWd.includes("\0") || rawWd.length > 4096) throw new OciInputError(`the image's WorkingDir ${JSON.stringify(rawWd)} is not an absolute path`);
    workdir = posix.normalize(rawWd).replace(/(.)\/+$/, "$1");
  }
  return { user, env, workdir };
}

/**
 * A numeric User becomes its name from the image's passwd: `vm exec` switches to a name with su, which
 * every image has, while a bare uid needs util-linux setpriv (busybox images lack it).
 */
export function userByUid(defaults: ExecDefaults, passwd: string | undefined): ExecDefaults {
  if (defaults.user === null || !/^[0-9]+$/.test(defaults.user) || passwd === undefined) return defaults;
  for (const line of passwd.split("\n")) {
    const [name, , uid] = line.split(":");
    if (uid === defaults.user && name !== undefined && USER_RE.test(name) && !/^[0-9]+$/.test(name)) return { ...defaults, user: name };
  }
  return defaults;
}

const INDEX_TYPES = new Set(["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"]);

/** The manifest for linux/amd64 out of an index (the only one, or the one whose platform says so). */
async function pickManifest(store: BlobStore, index: Record<string, unknown>, depth: number): Promise<Record<string, unknown>> {
  const ms = arr(index["manifests"], "index.json manifests").map((m, i) => obj(m, `manifests[${i}]`));
  const fits = ms.filter((m) => {
    const p = m["platform"] === undefined ? undefined : obj(m["platform"], "platform");
    return p === undefined || (p["os"] === "linux" && p["architecture"] === "amd64");
  });
  const m = fits[0];
  if (m === undefined) throw new OciInputError("the image index has no linux/amd64 manifest");
  if (fits.length > 1) throw new OciInputError(`the image index lists ${fits.length} images; banger builds from an archive of one`);
  const digest = checkDigest(m["digest"], "manifest");
  const doc = obj(await readJson(store, blobPath(digest), digest), "manifest");
  if (INDEX_TYPES.has(String(m["mediaType"])) || INDEX_TYPES.has(String(doc["mediaType"]))) {
    if (depth > 3) throw new OciInputError("image indexes nest too deep");
    return pickManifest(store, doc, depth + 1);
  }
  return doc;
}

function diffIds(config: Record<string, unknown>, count: number): (string | undefined)[] {
  const rootfs = config["rootfs"] === undefined ? undefined : obj(config["rootfs"], "config.rootfs");
  const ids = rootfs === undefined ? [] : arr(rootfs["diff_ids"], "config.rootfs.diff_ids").map((d) => checkDigest(d, "diff_id"));
  if (ids.length !== count) throw new OciInputError(`the config lists ${ids.length} layer diff_ids but the manifest has ${count} layers`);
  return ids;
}

async function fromOciLayout(store: BlobStore): Promise<OciImage> {
  const manifest = await pickManifest(store, obj(await readJson(store, "index.json"), "index.json"), 0);
  const cdesc = obj(manifest["config"], "manifest config");
  const cdigest = checkDigest(cdesc["digest"], "config");
  const config = obj(await readJson(store, blobPath(cdigest), cdigest), "config");
  const layers = arr(manifest["layers"], "manifest layers").map((l, i) => obj(l, `layers[${i}]`));
  const ids = diffIds(config, layers.length);
  return {
    defaults: execDefaultsFromConfig(config),
    architecture: typeof config["architecture"] === "string" ? config["architecture"] : undefined,
    layers: layers.map((l, i) => {
      const d = checkDigest(l["digest"], `layer ${i + 1}`);
      return makeLayer(store, blobPath(d), `${i + 1}/${layers.length} (${d.slice(7, 19)})`, d, ids[i]);
    }),
  };
}

async function fromDockerSave(store: BlobStore): Promise<OciImage> {
  const list = arr(await readJson(store, "manifest.json"), "manifest.json");
  if (list.length !== 1) throw new OciInputError(`manifest.json lists ${list.length} images; banger builds from an archive of one (docker save ONE-IMAGE)`);
  const m = obj(list[0], "manifest.json[0]");
  if (typeof m["Config"] !== "string") throw new OciInputError("manifest.json has no Config");
  const cname = m["Config"];
  // The config's name is its digest (HEX.json in the old layout, blobs/sha256/HEX in the OCI one).
  const hex = /(?:^|\/)([a-f0-9]{64})(?:\.json)?$/.exec(cname)?.[1];
  const config = obj(await readJson(store, cname, hex === undefined ? undefined : `sha256:${hex}`), "config");
  const layers = arr(m["Layers"], "manifest.json Layers").map((l) => {
    if (typeof l !== "string") throw new OciInputError("manifest.json Layers holds a non-string");
    return l;
  });
  const ids = diffIds(config, layers.length);
  return {
    defaults: execDefaultsFromConfig(config),
    architecture: typeof config["architecture"] === "string" ? config["architecture"] : undefined,
    layers: layers.map((l, i) => makeLayer(store, l, `${i + 1}/${layers.length} (${l})`, undefined, ids[i])),
  };
}

/** Open PATH (a directory holding an OCI layout, or a tar of one or of `docker save`) and read its manifest and config. */
export async function openOciArchive(path: string): Promise<OciImage> {
  const st = await stat(path).catch(() => undefined);
  if (st === undefined) throw new OciInputError(`oci-archive:${path} does not exist`);
  let store: BlobStore;
  if (st.isDirectory()) store = await dirStore(path);
  else {
    const head = Buffer.alloc(512);
    const fh = await open(path, "r");
    try {
      await fh.read(head, 0, 512, 0);
    } finally {
      await fh.close();
    }
    if (head.subarray(257, 262).toString("ascii") !== "ustar") throw new OciInputError(`oci-archive:${path} is not a tar archive (give a docker save tarball, an OCI layout directory, or a tar of one)`);
    store = await tarStore(path);
  }
  const image = store.has("index.json") ? await fromOciLayout(store) : store.has("manifest.json") ? await fromDockerSave(store) : undefined;
  if (image === undefined) throw new OciInputError(`oci-archive:${path} has neither index.json (OCI layout) nor manifest.json (docker save)`);
  if (image.architecture !== undefined && image.architecture !== "amd64") throw new OciInputError(`the image is for ${image.architecture}; banger guests are amd64`);
  return image;
}
