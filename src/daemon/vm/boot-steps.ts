import { mkdirSync } from "node:fs";
import { open } from "node:fs/promises";
import { stripTerminalControls } from "../../model/text.js";
import { vmFiles } from "../../paths/paths.js";
import type { SnapshotFiles } from "../../vmm/driver.js";
import type { ImageInfo, Lease, RootDisk, VmmHandle } from "./deps.js";
import { rootDiskEdits, workDiskEdits } from "./guest-files.js";
import { GIB } from "./limits.js";
import { syncKnownHosts, type LifecycleEnv } from "./lifecycle-env.js";
import type { HostKey } from "./ssh-keys.js";
import type { Step, StepEntry } from "./steps.js";

/**
 * The steps that bring a VM up, shared by create (all of them) and start
 * (the subset that does not make disks). Each step records the handles it
 * creates at once, so a daemon crash mid-way still leaves enough on record
 * to clean up.
 */
export interface BootCtx {
  readonly env: LifecycleEnv;
  readonly opId: string;
  readonly vmId: string;
  readonly name: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly diskGib: number;
  /** `--root-size`: the new root disk grown to this many GiB (else it is as large as the image's). */
  readonly rootGib?: number | undefined;
  readonly vmDir: string;
  readonly image: ImageInfo;
  readonly signal: AbortSignal;
  /** Restore (vm restore, vm fork, a warm create): the snapshot's disks and saved VMM state. */
  readonly source?: RestoreSource | undefined;
  lease?: Lease;
  root?: RootDisk;
  workDisk?: string;
  hostKey?: HostKey;
  vmm?: VmmHandle;
}

/** Where a restored VM comes from: paths inside one snapshot's directory. */
export interface RestoreSource {
  readonly rootDisk: string;
  readonly workDisk: string;
  readonly saved: SnapshotFiles;
}

export type BootStep = Step<BootCtx>;
export type BootEntry = StepEntry<BootCtx>;

export function need<T>(value: T | undefined, what: string, step: string): T {
  if (value === undefined) throw new Error(`step ${step} needs ${what}, which no earlier step provided`);
  return value;
}

/** Steps of one group may each be first to write into the VM's directory (sync: no thread-pool round trip for a stat). */
export function ensureVmDir(ctx: BootCtx): void {
  mkdirSync(ctx.vmDir, { recursive: true, mode: 0o700 });
}

export const leaseStep: BootStep = {
  name: "lease",
  async run(ctx) {
    ctx.lease = await ctx.env.deps.network.lease(ctx.vmId, ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { ip: ctx.lease.ip, mac: ctx.lease.mac, tap: ctx.lease.tap, cid: ctx.lease.cid });
  },
  async undo(ctx) {
    await ctx.env.deps.network.release(ctx.vmId, ctx.opId);
  },
};

/** On start the VM keeps its lease (same IP); a failed start must not give it away. */
export const reuseLeaseStep: BootStep = {
  name: "lease",
  async run(ctx) {
    ctx.lease = await ctx.env.deps.network.lease(ctx.vmId, ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { ip: ctx.lease.ip, mac: ctx.lease.mac, tap: ctx.lease.tap, cid: ctx.lease.cid });
  },
};

export const hostKeyStep: BootStep = {
  name: "host-key",
  async run(ctx) {
    ctx.hostKey = await ctx.env.hostKey(ctx.image.flavor);
    await ctx.env.handles.save(ctx.vmId, { host_key_pub: ctx.hostKey.public, console_log: vmFiles.consoleLog(ctx.vmDir) });
  },
};

export const cloneRootStep: BootStep = {
  name: "clone-root",
  async run(ctx) {
    ensureVmDir(ctx);
    ctx.root = await ctx.env.deps.storage.cloneRoot({ vmId: ctx.vmId, vmDir: ctx.vmDir, image: ctx.image, ...(ctx.rootGib !== undefined ? { rootSizeBytes: ctx.rootGib * GIB } : {}) }, ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { root_disk: { ...ctx.root } });
  },
  async undo(ctx) {
    if (ctx.root !== undefined) await ctx.env.deps.storage.destroyRoot(ctx.root, ctx.opId);
  },
};

export const activateRootStep: BootStep = {
  name: "activate-root",
  async run(ctx) {
    ctx.root = await ctx.env.deps.storage.activateRoot(need(ctx.root, "the root disk handle", "activate-root"), ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { root_disk: { ...ctx.root } });
  },
  async undo(ctx) {
    if (ctx.root !== undefined) await ctx.env.deps.storage.deactivateRoot(ctx.root, ctx.opId);
  },
};

export const workDiskStep: BootStep = {
  name: "work-disk",
  async run(ctx) {
    ensureVmDir(ctx);
    const contents = workDiskEdits((await ctx.env.installKey()).publicKey);
    ctx.workDisk = await ctx.env.deps.storage.createWorkDisk({ vmId: ctx.vmId, vmDir: ctx.vmDir, sizeGib: ctx.diskGib, contents }, ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { work_disk: ctx.workDisk });
  },
  async undo(ctx) {
    if (ctx.workDisk !== undefined) await ctx.env.deps.storage.destroyWorkDisk(ctx.workDisk, ctx.opId);
  },
};

const MAX_FSTAB_BYTES = 64 * 1024;

export const injectStep: BootStep = {
  name: "inject-files",
  async run(ctx) {
    const identity = {
      name: ctx.name,
      flavor: ctx.image.flavor,
      lease: need(ctx.lease, "a lease", "inject-files"),
      hostKey: need(ctx.hostKey, "a host key", "inject-files"),
    };
    // The image's own mounts are kept, merged with banger's (the fstab is rewritten whole).
    const imageFstab = await ctx.env.deps.storage.readImageFile(ctx.image, "/etc/fstab", ctx.opId);
    if (imageFstab !== undefined && imageFstab.length > MAX_FSTAB_BYTES) throw new Error(`image ${ctx.image.name}'s /etc/fstab is ${imageFstab.length} bytes; more than ${MAX_FSTAB_BYTES} is not an fstab`);
    // The work disk was cloned with the install's key already in it (work-disk step).
    await ctx.env.deps.storage.injectFiles({ kind: "root", root: need(ctx.root, "a root disk", "inject-files") }, rootDiskEdits(identity, imageFstab?.toString("utf8") ?? ""), ctx.opId);
  },
};

export const pinHostKeyStep: BootStep = {
  name: "pin-host-key",
  async run(ctx) {
    await syncKnownHosts(ctx.env);
  },
  async undo(ctx) {
    await syncKnownHosts(ctx.env, ctx.vmId);
  },
};

/** On start the VM keeps its host key; re-pinning is idempotent and must not unpin on failure. */
export const repinHostKeyStep: BootStep = {
  name: "pin-host-key",
  async run(ctx) {
    await syncKnownHosts(ctx.env);
  },
};

export const networkStep: BootStep = {
  name: "network",
  async run(ctx) {
    await ctx.env.deps.network.attach(ctx.vmId, need(ctx.lease, "a lease", "network"), ctx.opId);
  },
  async undo(ctx) {
    if (ctx.lease !== undefined) await ctx.env.deps.network.detach(ctx.vmId, ctx.lease, ctx.opId);
  },
};

/**
 * NAT only carries the guest's own outbound traffic, which nothing waits for before the guest is
 * ssh-ready (readiness is probed from the host over the bridge): so it runs beside launch-vmm, off
 * the path to qemu's spawn, and its nft run is hidden in qemu's own start-up.
 */
export const natStep: BootStep = {
  name: "nat",
  async run(ctx) {
    await ctx.env.deps.network.addNat(ctx.vmId, need(ctx.lease, "a lease", "nat"), ctx.opId);
  },
  async undo(ctx) {
    if (ctx.lease !== undefined) await ctx.env.deps.network.removeNat(ctx.vmId, ctx.lease, ctx.opId);
  },
};

/** The VM's recorded ports, published as soon as its tap and address exist (a DNAT rule needs no guest yet). */
export const portsStep: BootStep = {
  name: "ports",
  async run(ctx) {
    await ctx.env.deps.ports.apply(ctx.vmId, need(ctx.lease, "a lease", "ports"), ctx.opId);
  },
  async undo(ctx) {
    if (ctx.lease !== undefined) await ctx.env.deps.ports.clear(ctx.vmId, ctx.lease, ctx.opId);
  },
};

/**
 * The VM's egress policy and the host protections every guest gets, in place once its tap exists and
 * before the VMM starts, so the guest's first packet already meets them.
 */
export const egressStep: BootStep = {
  name: "egress",
  async run(ctx) {
    await ctx.env.deps.egress.apply(ctx.vmId, need(ctx.lease, "a lease", "egress"), ctx.opId);
  },
  async undo(ctx) {
    if (ctx.lease !== undefined) await ctx.env.deps.egress.clear(ctx.vmId, ctx.lease, ctx.opId);
  },
};

export const launchStep: BootStep = {
  name: "launch-vmm",
  async run(ctx) {
    const root = need(ctx.root, "a root disk", "launch-vmm");
    ctx.vmm = await ctx.env.deps.vmm.launch({
      vmId: ctx.vmId,
      name: ctx.name,
      vcpus: ctx.vcpus,
      memoryMib: ctx.memoryMib,
      image: ctx.image,
      rootDiskPath: root.path,
      workDiskPath: need(ctx.workDisk, "a work disk", "launch-vmm"),
      lease: need(ctx.lease, "a lease", "launch-vmm"),
      consoleLog: vmFiles.consoleLog(ctx.vmDir),
      vmDir: ctx.vmDir,
      restore: ctx.source?.saved,
    }, ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { vmm_kind: ctx.vmm.kind, pid: ctx.vmm.pid, control_socket: ctx.vmm.controlSocket, vsock_path: ctx.vmm.vsockPath, vmm: { ...ctx.vmm }, boot_id: ctx.env.bootId });
  },
  async undo(ctx) {
    if (ctx.vmm === undefined) return;
    await ctx.env.deps.vmm.stop(ctx.vmm, { timeoutMs: ctx.env.stopTimeoutMs, force: true }, ctx.opId);
    await ctx.env.handles.save(ctx.vmId, { pid: undefined, control_socket: undefined, vsock_path: undefined, vmm: undefined });
  },
};

export const waitSshStep: BootStep = {
  name: "wait-ssh",
  async run(ctx) {
    const vmm = need(ctx.vmm, "a running VMM", "wait-ssh");
    const lease = need(ctx.lease, "a lease", "wait-ssh");
    const ac = new AbortController();
    const onOuterAbort = (): void => { ac.abort(ctx.signal.reason); };
    ctx.signal.addEventListener("abort", onOuterAbort, { once: true });
    // Race the probe against the VMM dying: a kernel panic (panic=1, -no-reboot) makes the VMM exit,
    // and waiting out the full ssh timeout for it would waste a minute and hide the reason.
    let timer: NodeJS.Timeout | undefined;
    const died = new Promise<never>((_resolve, reject) => {
      const check = async (): Promise<void> => {
        if (ac.signal.aborted) return;
        let alive = true;
        try {
          alive = await ctx.env.deps.vmm.isAlive(vmm);
        } catch {
          // A failed liveness check is not evidence of death; the ssh timeout still bounds the wait.
        }
        if (ac.signal.aborted) return;
        if (!alive) {
          reject(new Error(`the VMM exited while ${ctx.name} was booting${await consoleTail(vmFiles.consoleLog(ctx.vmDir))}`));
          return;
        }
        timer = setTimeout(() => { void check(); }, ctx.env.aliveCheckMs);
      };
      timer = setTimeout(() => { void check(); }, ctx.env.aliveCheckMs);
    });
    died.catch(() => undefined);
    try {
      await Promise.race([ctx.env.deps.ssh.waitReady({ ip: lease.ip, name: ctx.name }, { timeoutMs: ctx.env.sshReadyTimeoutMs, signal: ac.signal }), died]);
    } catch (e) {
      // Cancelled, deleted or the daemon stopping: that is the reason, not whatever the probe saw last.
      if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : e;
      throw new Error(`${e instanceof Error ? e.message : String(e)}${e instanceof Error && e.message.includes("console") ? "" : await consoleTail(vmFiles.consoleLog(ctx.vmDir))}`, { cause: e });
    } finally {
      ac.abort(new Error("wait-ssh finished"));
      if (timer !== undefined) clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onOuterAbort);
    }
  },
};

export const publishDnsStep: BootStep = {
  name: "publish-dns",
  async run(ctx) {
    await ctx.env.deps.dns.publish(ctx.name, need(ctx.lease, "a lease", "publish-dns").ip, ctx.opId);
  },
  async undo(ctx) {
    await ctx.env.deps.dns.unpublish(ctx.name, ctx.opId);
  },
};

/**
 * The last lines of the console log, formatted for an error message (empty when there is no log).
 * A kernel panic's reason is printed before its stack and register dump, which usually fill the
 * last lines; it is named first, always, so the error says why the guest died.
 */
export async function consoleTail(path: string, lines = 15, maxBytes = 8192): Promise<string> {
  try {
    const fh = await open(path, "r");
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - maxBytes);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      // Guest bytes reach the user's terminal in this error: no escape sequence of theirs survives.
      const all = buf.toString("utf8").split("\n").map(stripTerminalControls).filter((l) => l.trim() !== "");
      const tail = all.slice(-lines);
      const panic = all.findLast((l) => l.includes("Kernel panic - not syncing"));
      const reason = panic === undefined ? "" : `; the guest kernel panicked: ${panic.replace(/^\[\s*[\d.]+\]\s*/, "").trim()}`;
      return tail.length === 0 ? "" : `${reason}; last console lines (${path}):\n${tail.join("\n")}`;
    } finally {
      await fh.close();
    }
  } catch {
    return "";
  }
}

/**
 * VM create, in order. Grouped steps share no data and run concurrently:
 * most of their time is spent in forked tools and the helper, so the
 * critical path shrinks to the slowest member. Edit with insertBefore/
 * insertAfter/replaceStep from steps.ts.
 */
export const CREATE_STEPS: readonly BootEntry[] = [
  leaseStep,
  { name: "prepare", parallel: [hostKeyStep, cloneRootStep, workDiskStep, networkStep] },
  { name: "configure", parallel: [injectStep, pinHostKeyStep, egressStep] },
  { name: "start", parallel: [launchStep, natStep] },
  portsStep,
  waitSshStep,
  publishDnsStep,
];

/** VM start of a stopped VM: same disks, same lease. */
export const START_STEPS: readonly BootEntry[] = [
  reuseLeaseStep,
  { name: "prepare", parallel: [activateRootStep, repinHostKeyStep, networkStep] },
  egressStep,
  { name: "start", parallel: [launchStep, natStep] },
  portsStep,
  waitSshStep,
  publishDnsStep,
];
