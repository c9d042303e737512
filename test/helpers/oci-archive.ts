import { createHash } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** One member of a test tar, written byte by byte so tests can make archives GNU tar would refuse to (../ names, devices). */
export interface TestTarEntry {
  readonly name: string;
  readonly type?: "file" | "dir" | "symlink" | "hardlink" | "char" | "fifo";
  readonly mode?: number;
  readonly uid?: number;
  readonly gid?: number;
  readonly content?: string | Buffer;
  readonly linkname?: string;
  readonly xattrs?: Readonly<Record<string, string>>;
}

const FLAGS = { file: "0", hardlink: "1", symlink: "2", char: "3", dir: "5", fifo: "6" } as const;

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

function header(name: string, flag: string, size: number, e: TestTarEntry, linkname: string): Buffer {
  const h = Buffer.alloc(512);
  h.write(name.slice(0, 100), 0, "utf8");
  h.write(octal(e.mode ?? (flag === "5" ? 0o755 : 0o644), 8), 100, "ascii");
  h.write(octal(e.uid ?? 0, 8), 108, "ascii");
  h.write(octal(e.gid ?? 0, 8), 116, "ascii");
  h.write(octal(size, 12), 124, "ascii");
  h.write(octal(1_700_000_000, 12), 136, "ascii");
  h.write("        ", 148, "ascii");
  h.write(flag, 156, "ascii");
  h.write(linkname.slice(0, 100), 157, "utf8");
  h.write("ustar\u000000", 257, "binary");
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + " ", 148, "ascii");
  return h;
}

const pad = (b: Buffer): Buffer => Buffer.concat([b, Buffer.alloc((512 - (b.length % 512)) % 512)]);

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len = String(len).length + body.length;
  return `${len}${body}`;
}

export function tarBytes(entries: readonly TestTarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const type = e.type ?? (e.name.endsWith("/") ? "dir" : "file");
    const content = type === "file" ? Buffer.from(e.content ?? "") : Buffer.alloc(0);
    const pax = [
      ...(Buffer.byteLength(e.name) > 100 ? [paxRecord("path", e.name)] : []),
      ...Object.entries(e.xattrs ?? {}).map(([k, v]) => paxRecord(`SCHILY.xattr.${k}`, v)),
    ].join("");
    if (pax !== "") {
      const data = Buffer.from(pax, "utf8");
      parts.push(header("PaxHeader", "x", data.length, { name: "PaxHeader" }, ""), pad(data));
    }
    parts.push(header(e.name, FLAGS[type], content.length, e, e.linkname ?? ""), pad(content));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

const digest = (b: Buffer): string => `sha256:${createHash("sha256").update(b).digest("hex")}`;

export interface TestImageConfig {
  readonly User?: string;
  readonly Env?: readonly string[];
  readonly WorkingDir?: string;
}

function configJson(layers: readonly Buffer[], config: TestImageConfig, architecture: string): Buffer {
  return Buffer.from(JSON.stringify({ architecture, os: "linux", config, rootfs: { type: "layers", diff_ids: layers.map(digest) } }));
}

/** An OCI image layout directory (gzip layers unless told otherwise). Returns the blob digests written. */
export async function writeOciLayout(dir: string, layers: readonly Buffer[], config: TestImageConfig, opts: { gzip?: boolean; architecture?: string } = {}): Promise<{ layerDigests: string[]; configDigest: string }> {
  const blobs = join(dir, "blobs", "sha256");
  await mkdir(blobs, { recursive: true });
  const put = async (b: Buffer): Promise<string> => {
    const d = digest(b);
    await writeFile(join(blobs, d.slice(7)), b);
    return d;
  };
  const gz = opts.gzip ?? true;
  const layerBlobs = layers.map((l) => (gz ? gzipSync(l) : l));
  const layerDigests = await Promise.all(layerBlobs.map(put));
  const cfg = configJson(layers, config, opts.architecture ?? "amd64");
  const configDigest = await put(cfg);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
    config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: cfg.length },
    layers: layerBlobs.map((b, i) => ({ mediaType: `application/vnd.oci.image.layer.v1.tar${gz ? "+gzip" : ""}`, digest: layerDigests[i], size: b.length })),
  }));
  const md = await put(manifest);
  await writeFile(join(dir, "oci-layout"), JSON.stringify({ imageLayoutVersion: "1.0.0" }));
  await writeFile(join(dir, "index.json"), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: "application/vnd.oci.image.manifest.v1+json", digest: md, size: manifest.length }] }));
  return { layerDigests, configDigest };
}

/** A `docker save` tarball (the classic layout: HEX.json config, DIR/layer.tar, manifest.json). */
export function dockerSaveTar(layers: readonly Buffer[], config: TestImageConfig, opts: { images?: number } = {}): Buffer {
  const cfg = configJson(layers, config, "amd64");
  const cfgName = `${digest(cfg).slice(7)}.json`;
  const layerNames = layers.map((l) => `${digest(l).slice(7)}/layer.tar`);
  const one = { Config: cfgName, RepoTags: ["test:latest"], Layers: layerNames };
  const manifest = JSON.stringify(Array.from({ length: opts.images ?? 1 }, () => one));
  return tarBytes([
    { name: cfgName, content: cfg },
    ...layers.flatMap((l, i) => [{ name: `${(layerNames[i] ?? "").split("/")[0] ?? ""}/`, type: "dir" as const }, { name: layerNames[i] ?? "", content: l }]),
    { name: "manifest.json", content: manifest },
  ]);
}
