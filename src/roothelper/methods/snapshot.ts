import { createHash } from "node:crypto";
import { closeSync, constants, createReadStream, createWriteStream, fstatSync, fsync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import { HELPER_VM_LEAVES } from "../../paths/paths.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import { privVmmSaveState } from "../../rpc/priv/vmm.js";
import { AT_SYMLINK_NOFOLLOW, dirfdCalls } from "../../system/dirfd-calls.js";
import { peerCredOf, type PeerCred } from "../../system/peercred.js";
import { fcRequest } from "../../vmm/firecracker/api-client.js";
import { jailLayout } from "../../vmm/firecracker/jail.js";
import { qmpMigrateAndWait, qmpRunState, SAVABLE_STATES } from "../../vmm/qemu/migrate.js";
import type { HelperEnv } from "../env.js";
import { named, openEntry, openParent, openRegular, removeStale, RESOLVE, type Named } from "../fs/beneath.js";
import type { TrustedExecutable } from "../fs/trust.js";
import { copyInto, openSnapshotForSave, type SnapshotHeld } from "../launch/restore-files.js";
import * as v from "../validate.js";
import { overControlSocket } from "./vmm.js";

/** Entries of a VM's run dir a save makes and removes again (HELPER_VM_LEAVES holds what outlives a request). */
const SAVE_LEAVES = { migrationSocket: "migrate.sock", fcState: "snapshot.vmstate", fcMemory: "snapshot.mem" } as const;
const DEFAULT_SAVE_TIMEOUT_MS = 120_000;

/**
 * priv.vmm_save_state. The guest must be paused already; it stays paused. Nothing of the stream is
 * parsed by root: qemu (as the owner) writes it to a socket root listens on, or Firecracker writes its
 * files, and the helper only copies bytes into the owner's files through the descriptors it checked.
 */
export function snapshotMethods(env: HelperEnv): Registration<PeerCred>[] {
  return [
    implement(privVmmSaveState, async (p, ctx) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      const timeoutMs = v.intInRange("timeout_ms", p.timeout_ms ?? DEFAULT_SAVE_TIMEOUT_MS, 1000, 600_000);
      env.vmms.signal("pid", p.pid, vmId, 0);
      const bin = p.kind === "qemu" ? env.binaries.qemu : env.binaries.firecracker;
      if (bin === undefined) throw new RpcError("operation_failed", `no ${p.kind} binary was found when the helper started`);
      const files = await openSnapshotForSave(env, p.state_path, p.memory_path);
      const started = Date.now();
      try {
        await overControlSocket(env, p, `saving the state of ${vmId}`, (sock) => (p.kind === "qemu" ? saveQemu(env, vmId, p.pid, sock, files, timeoutMs) : saveFirecracker(env, vmId, sock, files, timeoutMs)));
        await promisify(fsync)(files.state.fd);
        await promisify(fsync)(files.memory.fd);
        const bytes = fstatSync(files.state.fd).size + fstatSync(files.memory.fd).size;
        const elapsedMs = Date.now() - started;
        env.logger.child({ op_id: ctx.opId, vm_id: vmId }).info("VMM state saved", { kind: p.kind, bytes, elapsed_ms: elapsedMs });
        return { bytes, elapsed_ms: elapsedMs, vmm_version: await vmmVersion(bin) };
      } finally {
        files.close();
      }
    }),
  ];
}

function refuseUnlessPaused(state: string, vmId: string, paused: (s: string) => boolean): void {
  if (!paused(state)) throw new RpcError("conflict", `VM ${vmId} is ${state}, not paused; pause it first (banger vm pause), then save`);
}

/**
 * qemu: a unix socket in the VM's root-owned run dir, bound through that directory's descriptor and
 * handed to the owner (fchownat, mode 0700), so qemu, which runs as the owner, can connect by its path;
 * only a connection from the VMM's own pid (SO_PEERCRED) is read. What arrives goes into the state file.
 */
async function saveQemu(env: HelperEnv, vmId: string, pid: number, qmp: string, files: SnapshotHeld, timeoutMs: number): Promise<void> {
  refuseUnlessPaused(await qmpRunState(qmp), vmId, (s) => SAVABLE_STATES.includes(s));
  const n = env.vmmRunDirs.named("migration_socket", vmId, SAVE_LEAVES.migrationSocket);
  removeStale(n, (st) => st.isSocket());
  const { dirFd, leaf } = openParent(n);
  let server: Server | undefined;
  try {
    let onStream: (s: Socket) => void = () => undefined;
    const stream = new Promise<Socket>((resolve) => { onStream = resolve; });
    server = createServer((conn) => {
      // Anyone who can reach the path is the owner (mode 0700): still, only the VMM being saved writes the file.
      let peer: PeerCred | undefined;
      try {
        peer = peerCredOf(conn);
      } catch {
        peer = undefined;
      }
      if (peer?.pid !== pid) {
        conn.destroy();
        return;
      }
      server?.close();
      onStream(conn);
    });
    const listening = server;
    await new Promise<void>((resolve, reject) => {
      listening.once("error", reject);
      listening.listen(`/proc/self/fd/${dirFd}/${leaf}`, () => { resolve(); });
    });
    dirfdCalls().fchownat(dirFd, leaf, env.ownerUid, env.ownerGid, AT_SYMLINK_NOFOLLOW);
    const written = stream.then((conn) => pipeline(conn, createWriteStream("", { fd: files.state.fd, autoClose: false, start: 0 })));
    // Awaited below once qemu says the migration completed; until then a failure must not go unhandled.
    written.catch(() => undefined);
    // qemu resolves the path itself, as the owner: every directory on it is root's, so it reaches this socket.
    await qmpMigrateAndWait(qmp, `unix:${env.vmmRunDirs.path(vmId, leaf)}`, timeoutMs);
    await withTimeout(written, 10_000, "qemu's migration completed but its stream did not end");
    const after = await qmpRunState(qmp);
    if (after === "running") throw new Error(`VM ${vmId} is running after the save; its state file may not match what the guest does now`);
  } catch (e) {
    throw e instanceof RpcError ? e : new RpcError("operation_failed", `saving the state of ${vmId}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    server?.close();
    try {
      dirfdCalls().unlinkat(dirFd, leaf, 0);
    } catch {
      // never bound, or already gone
    }
    closeSync(dirFd);
  }
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => { timer = setTimeout(() => { reject(new Error(`${what} within ${ms} ms`)); }, ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Firecracker: `PUT /snapshot/create` into the helper's run dir (an unjailed, root Firecracker) or
 * the jail's root (a jailed one, as the owner); the files it wrote are then opened beneath that
 * directory's descriptor (regular, single-link, of the uid it runs as), copied into the owner's files,
 * and removed.
 */
async function saveFirecracker(env: HelperEnv, vmId: string, api: string, files: SnapshotHeld, timeoutMs: number): Promise<void> {
  const info = (await fcRequest(api, "GET", "/")).body as { state?: unknown } | undefined;
  refuseUnlessPaused(String(info?.state), vmId, (s) => s === "Paused");
  const where = fcSnapshotDir(env, vmId);
  const made = [SAVE_LEAVES.fcState, SAVE_LEAVES.fcMemory].map((leaf) => where.entry(leaf));
  try {
    for (const m of made) removeStale(m.n, (st) => st.isFile());
    const [state, memory] = made as [FcEntry, FcEntry];
    await fcRequest(api, "PUT", "/snapshot/create", { snapshot_type: "Full", snapshot_path: state.vmmPath, mem_file_path: memory.vmmPath }, timeoutMs);
    for (const [m, to] of [[state, files.state.fd], [memory, files.memory.fd]] as const) {
      const from = openRegular(m.n, "read", { uid: where.uid });
      try {
        await copyInto(from.fd, to);
      } finally {
        closeSync(from.fd);
      }
    }
  } catch (e) {
    throw e instanceof RpcError ? e : new RpcError("operation_failed", `saving the state of ${vmId}: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    for (const m of made) {
      try {
        removeStale(m.n, (st) => st.isFile());
      } catch {
        // replaced by something that is not a file: left alone, and the next save says so
      }
    }
  }
}

interface FcEntry {
  /** Where the helper reaches it: beneath a root it opened at start. */
  readonly n: Named;
  /** The path Firecracker is told (inside its jail, or the run dir's real path). */
  readonly vmmPath: string;
}

function fcSnapshotDir(env: HelperEnv, vmId: string): { uid: number; entry(leaf: string): FcEntry } {
  const jailRoot = env.roots.jail;
  const exec = env.binaries.firecracker?.path ?? env.config.vmm.firecracker_bin;
  const ownApi = env.vmmRunDirs.named("api_socket", vmId, HELPER_VM_LEAVES.apiSocket);
  let unjailed = jailRoot === undefined;
  if (!unjailed) {
    try {
      closeSync(openEntry(ownApi).fd);
      unjailed = true;
    } catch {
      unjailed = false;
    }
  }
  if (unjailed || jailRoot === undefined) {
    return { uid: 0, entry: (leaf) => ({ n: env.vmmRunDirs.named(leaf, vmId, leaf), vmmPath: env.vmmRunDirs.path(vmId, leaf) }) };
  }
  const layout = jailLayout(jailRoot.path, exec, vmId);
  return { uid: env.ownerUid, entry: (leaf) => ({ n: named(leaf, join(layout.root, leaf), jailRoot), vmmPath: `/${leaf}` }) };
}

/** sha256 of each VMM binary, by its identity (inode and mtime): a restore needs the same one. */
const versions = new Map<string, string>();

/** The VMM binary's sha256, read through its checked directory's descriptor (never by name from the root). */
export async function vmmVersion(bin: TrustedExecutable): Promise<string> {
  const at = bin.execAt();
  const fd = dirfdCalls().openat2(at.dirFd, at.name, constants.O_RDONLY | constants.O_NOFOLLOW, 0, RESOLVE);
  try {
    const st = fstatSync(fd);
    const key = `${st.dev}:${st.ino}:${st.mtimeMs}:${st.size}`;
    const known = versions.get(key);
    if (known !== undefined) return known;
    const hash = createHash("sha256");
    await pipeline(createReadStream("", { fd, autoClose: false, start: 0 }), hash);
    const digest = `sha256:${hash.digest("hex")}`;
    versions.set(key, digest);
    return digest;
  } finally {
    closeSync(fd);
  }
}
