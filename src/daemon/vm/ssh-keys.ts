import { generateKeyPair, randomBytes, randomUUID } from "node:crypto";
import { constants } from "node:fs";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { dropbearPrivateKey, ed25519PublicLine, opensshPrivateKey } from "../../model/ssh-key-format.js";
import type { Ed25519Key } from "../../model/ssh-key-format.js";
import { state } from "../../paths/paths.js";

/**
 * SSH trust without prompts: one ed25519 client key per install, one host
 * key per VM generated here (so the daemon knows it before the guest boots),
 * and a banger-owned known_hosts rebuilt from the VM table so entries of
 * deleted VMs never linger to clash with a reused IP.
 *
 * Keys are made in-process (node:crypto + our own encoders) rather than by
 * ssh-keygen/dropbearconvert: those forks were a measurable share of each
 * `vm create`, and parallel creates paid for them on a 2-core budget.
 */
export interface InstallKey {
  readonly keyPath: string;
  readonly publicKey: string;
}

const generateKeyPairAsync = promisify(generateKeyPair);

/** A fresh ed25519 key; JWK is the only export that yields the raw 32-byte seed (`d`) and public key (`x`). */
async function newEd25519Key(): Promise<Ed25519Key> {
  const { privateKey } = await generateKeyPairAsync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  if (jwk.d === undefined || jwk.x === undefined) throw new Error("node:crypto returned an ed25519 JWK without d/x");
  return { seed: Buffer.from(jwk.d, "base64url"), publicKey: Buffer.from(jwk.x, "base64url") };
}

function randomCheckInt(): number {
  return randomBytes(4).readUInt32BE(0);
}

/**
 * Write-then-rename so a reader (or the next daemon after a crash) sees the
 * old file or the complete new one, never a truncated private key. The temp
 * name is unique and opened O_EXCL so two writers cannot share it and a
 * planted file or symlink is refused rather than followed. `durable` fsyncs
 * before the rename: without it a power cut can leave the renamed name
 * pointing at an empty file on ext4/xfs. Files rebuilt from the database on
 * every change (known_hosts) can skip it.
 */
async function writeFileAtomic(path: string, data: string | Buffer, mode: number, durable = true): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${randomUUID()}`;
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(data);
      if (durable) await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** Writes `data` over the file at `path` and cuts it to that length, when it is no longer than the file now. */
async function overwriteInPlace(path: string, data: Buffer): Promise<boolean> {
  let fh;
  try {
    fh = await open(path, constants.O_WRONLY | constants.O_NOFOLLOW);
  } catch {
    return false;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || data.length > st.size) return false;
    await fh.write(data, 0, data.length, 0);
    await fh.truncate(data.length);
    return true;
  } finally {
    await fh.close();
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch {
    return false;
  }
}

let pending: Promise<InstallKey> | undefined;

/** Returns the install's client key, creating it (once, even under concurrent creates) if missing. */
export function ensureInstallKey(stateDir: string): Promise<InstallKey> {
  const p = (pending ??= createOrLoad(stateDir));
  // A failed attempt must not be cached forever; the next create retries.
  p.catch(() => { if (pending === p) pending = undefined; });
  return p;
}

async function createOrLoad(stateDir: string): Promise<InstallKey> {
  const keyPath = state.sshKey(stateDir);
  if (!(await exists(keyPath)) || !(await exists(`${keyPath}.pub`))) {
    await mkdir(state.sshDir(stateDir), { recursive: true, mode: 0o700 });
    const key = await newEd25519Key();
    // Public half last: its presence is what marks the pair complete (see the check above).
    await rm(`${keyPath}.pub`, { force: true });
    await writeFileAtomic(keyPath, opensshPrivateKey(key, "banger", randomCheckInt()), 0o600);
    await writeFileAtomic(`${keyPath}.pub`, `${ed25519PublicLine(key.publicKey, "banger")}\n`, 0o600);
  }
  return { keyPath, publicKey: (await readFile(`${keyPath}.pub`, "utf8")).trim() };
}

/** For tests: forget the memoised key so another state dir can be used. */
export function resetInstallKeyCache(): void {
  pending = undefined;
}

export interface HostKey {
  /** Private key in the format the guest's server reads (OpenSSH, or dropbear for busybox images). */
  readonly private: Buffer;
  /** `ssh-ed25519 AAAA...` without comment: what goes into known_hosts. */
  readonly public: string;
}

/**
 * A new host key for one VM, in the form the guest's server reads (dropbear's for busybox
 * images, OpenSSH's otherwise). Only the guest keeps the private half: it is written into the
 * root disk and the public half is pinned from the VM's record, so no copy is kept on the host.
 */
export async function generateHostKey(flavor: "systemd" | "busybox"): Promise<HostKey> {
  const key = await newEd25519Key();
  const priv = flavor === "busybox" ? dropbearPrivateKey(key) : Buffer.from(opensshPrivateKey(key, "banger-host", randomCheckInt()));
  return { private: priv, public: ed25519PublicLine(key.publicKey) };
}

/** `ssh-ed25519 AAAA... comment` -> `ssh-ed25519 AAAA...`, refusing anything that is not one ed25519 key. */
export function publicKeyBody(line: string): string {
  const trimmed = line.trim();
  const [type, body] = trimmed.split(/[ \t]+/);
  if (/[\r\n\0]/.test(trimmed) || type !== "ssh-ed25519" || body === undefined || !/^[A-Za-z0-9+/]+=*$/.test(body)) throw new Error(`not an ssh-ed25519 public key: ${JSON.stringify(line.slice(0, 40))}`);
  return `${type} ${body}`;
}

export interface KnownHost {
  readonly name: string;
  readonly ip: string;
  readonly publicKey: string;
}

export function renderKnownHosts(entries: readonly KnownHost[]): string {
  return entries
    .filter((e) => e.ip !== "" && e.publicKey !== "")
    .map((e) => `${e.name}.vm,${e.ip} ${publicKeyBody(e.publicKey)}\n`)
    .join("");
}

let writeChain: Promise<void> = Promise.resolve();

/**
 * Atomically replaces known_hosts (temp + rename), serialised so concurrent rebuilds never
 * interleave. On a full disk the temp file cannot be written, yet removing a VM's key must still
 * work: it is how a create that failed for want of space is unwound. A text no longer than the
 * file's is then written over it in place, which needs no new block. That is safe because
 * known_hosts is rebuilt from the database on every change: a write torn by a crash is repaired
 * by the next rebuild, and ssh meanwhile refuses a key it cannot match rather than accepting one.
 */
export function writeKnownHosts(path: string, entries: readonly KnownHost[]): Promise<void> {
  const next = writeChain.then(async () => {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const text = renderKnownHosts(entries);
    try {
      await writeFileAtomic(path, text, 0o600, false);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOSPC" && code !== "EDQUOT") throw e;
      if (!(await overwriteInPlace(path, Buffer.from(text, "utf8")))) throw e;
    }
  });
  writeChain = next.catch(() => undefined);
  return next;
}
