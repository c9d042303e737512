import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { state, vmFiles } from "../../paths/paths.js";
import type { Runner } from "../../system/runner.js";

/**
 * SSH trust without prompts: one ed25519 client key per install, one host
 * key per VM generated here (so the daemon knows it before the guest boots),
 * and a banger-owned known_hosts rebuilt from the VM table so entries of
 * deleted VMs never linger to clash with a reused IP.
 */
export interface InstallKey {
  readonly keyPath: string;
  readonly publicKey: string;
}

let pending: Promise<InstallKey> | undefined;

async function exists(path: string): Promise<boolean> {
  try {
    await readFile(path);
    return true;
  } catch {
    return false;
  }
}

/** Returns the install's client key, creating it (once, even under concurrent creates) if missing. */
export function ensureInstallKey(runner: Runner, stateDir: string): Promise<InstallKey> {
  const p = (pending ??= createOrLoad(runner, stateDir));
  // A failed attempt must not be cached forever; the next create retries.
  p.catch(() => { if (pending === p) pending = undefined; });
  return p;
}

async function createOrLoad(runner: Runner, stateDir: string): Promise<InstallKey> {
  const keyPath = state.sshKey(stateDir);
  if (!(await exists(keyPath)) || !(await exists(`${keyPath}.pub`))) {
    await mkdir(state.sshDir(stateDir), { recursive: true, mode: 0o700 });
    await rm(keyPath, { force: true });
    await rm(`${keyPath}.pub`, { force: true });
    await runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger", "-f", keyPath]);
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

export async function generateHostKey(runner: Runner, vmDir: string, flavor: "systemd" | "busybox"): Promise<HostKey> {
  const keyPath = vmFiles.hostKey(vmDir);
  await mkdir(dirname(keyPath), { recursive: true, mode: 0o700 });
  await rm(keyPath, { force: true });
  await rm(vmFiles.hostKeyPub(vmDir), { force: true });
  await runner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "banger-host", "-f", keyPath]);
  const pub = publicKeyBody((await readFile(vmFiles.hostKeyPub(vmDir), "utf8")));
  if (flavor === "busybox") {
    const out = vmFiles.hostKeyDropbear(vmDir);
    await rm(out, { force: true });
    await runner.run(["dropbearconvert", "openssh", "dropbear", keyPath, out]);
    return { private: await readFile(out), public: pub };
  }
  return { private: await readFile(keyPath), public: pub };
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

/** Atomically replaces known_hosts (temp + rename), serialised so concurrent rebuilds never interleave. */
export function writeKnownHosts(path: string, entries: readonly KnownHost[]): Promise<void> {
  const next = writeChain.then(async () => {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, renderKnownHosts(entries), { mode: 0o600 });
    await rename(tmp, path);
  });
  writeChain = next.catch(() => undefined);
  return next;
}
