import type { PortSpec } from "../../model/port-spec.js";
/**
 * The seams between the VM lifecycle and the subsystems other modules own
 * (network, storage, vmm drivers, dns, images, ssh). The lifecycle only talks
 * to these interfaces; the daemon wires real implementations in, tests wire
 * recording fakes. Every call that may reach the root helper takes the op id
 * of the request being served so logs correlate across processes.
 */

import type { SaveResult, SnapshotFiles } from "../../vmm/driver.js";
import type { VmIdentity } from "../../rpc/priv/agent.js";

/** An image as VM create needs it (see the guest contract). */
export interface ImageInfo {
  readonly name: string;
  /** Which files VM create injects: systemd (Debian default) or busybox (tiny test image). */
  readonly flavor: "systemd" | "busybox";
  /** bzImage, used by qemu. */
  readonly kernelPath: string;
  /** Uncompressed ELF, used by Firecracker. */
  readonly vmlinuxPath?: string | undefined;
  readonly initrdPath?: string | undefined;
  readonly rootfsPath: string;
  /** When the image was (re)built: a warm template made from an older build is stale. */
  readonly createdAt?: string | undefined;
}

export interface ImageDeps {
  get(name: string): Promise<ImageInfo | undefined>;
}

/** A VM's network identity, stable for its whole life (start after stop keeps the same IP). */
export interface Lease {
  readonly ip: string;
  readonly mac: string;
  readonly tap: string;
  readonly cid: number;
  /** Prefix length of the bridge subnet, e.g. 24. */
  readonly prefix: number;
  /** The bridge's address: the guest's default gateway. */
  readonly gateway: string;
  /** Resolvers written to the guest's resolv.conf / network config. */
  readonly nameservers: readonly string[];
}

export interface NetworkDeps {
  /** Get-or-allocate (transactional in the state store): a VM that already has a lease gets the same one back. */
  lease(vmId: string, opId: string): Promise<Lease>;
  /** Frees the lease row. Idempotent. */
  release(vmId: string, opId: string): Promise<void>;
  /** Creates the tap (or takes one from the pool) and attaches it to the bridge: what the VMM needs to start. */
  attach(vmId: string, lease: Lease, opId: string): Promise<void>;
  /** Adds NAT for the guest IP (a no-op when NAT is off); nothing of it is left behind when it fails. */
  addNat(vmId: string, lease: Lease, opId: string): Promise<void>;
  /** Reverses addNat. Idempotent. */
  removeNat(vmId: string, lease: Lease, opId: string): Promise<void>;
  /** Reverses attach and addNat. Idempotent: absent tap/rules are not errors. */
  detach(vmId: string, lease: Lease, opId: string): Promise<void>;
  /** banger's host network as the root helper sees it: what start-up compares with the VMs' claims. */
  hostView(opId: string): Promise<HostNetwork>;
  /** Deletes a tap no VM claims. Idempotent. */
  deleteTap(tap: string, opId: string): Promise<void>;
  /** Removes the NAT of a guest address no VM claims. Idempotent. */
  removeNatGuest(guest: NatGuest, opId: string): Promise<void>;
  /** Removes all of banger's NAT (every backend's table/chains) and turns ip_forward back off if banger turned it on. */
  removeAllNat(opId: string): Promise<void>;
}

export interface NatGuest {
  readonly ip: string;
  readonly tap: string;
}

export interface HostNetwork {
  /** This install's banger taps, less the pool taps the config keeps (the pool outlives its VMs). */
  readonly taps: readonly string[];
  /** Guests banger's NAT masquerades. */
  readonly natGuests: readonly NatGuest[];
  /** Whether banger's NAT table/chains exist at all (they may hold no guest). */
  readonly natInstalled: boolean;
}

/** Opaque record of how a VM's root disk was cloned (file path, or dm/loop names). Persisted in handles. */
export interface RootDisk {
  readonly strategy: string;
  /** What the VMM opens as /dev/vda (a file or a block device). */
  readonly path: string;
  readonly [key: string]: unknown;
}

/** One file to place into a guest disk without mounting it. */
export interface GuestFile {
  /** Absolute path inside the disk's filesystem. */
  readonly path: string;
  readonly content: Buffer;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface GuestDir {
  readonly path: string;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface GuestEdits {
  readonly dirs: readonly GuestDir[];
  readonly files: readonly GuestFile[];
}

export interface StorageDeps {
  /** Makes the VM's copy-on-write root over the image rootfs, ready to be opened by the VMM. */
  cloneRoot(req: { vmId: string; vmDir: string; image: ImageInfo; rootSizeBytes?: number | undefined }, opId: string): Promise<RootDisk>;
  /** A file of the image's root filesystem (read, never mounted), or undefined when it has none. */
  readImageFile(image: ImageInfo, path: string, opId: string): Promise<Buffer | undefined>;
  /** Grows a stopped VM's root disk and its filesystem to `bytes` (never shrinks). */
  growRoot(root: RootDisk, bytes: number, opId: string): Promise<void>;
  /** Grows a stopped VM's work disk (/root) and its filesystem to `bytes` (never shrinks). */
  growWorkDisk(path: string, bytes: number, opId: string): Promise<void>;
  /** Re-activates a root made earlier (dm-snapshot after stop/host reboot); returns possibly-new device names. */
  activateRoot(root: RootDisk, opId: string): Promise<RootDisk>;
  /** Releases devices the root holds while the VM is down; disk contents are kept. Idempotent. */
  deactivateRoot(root: RootDisk, opId: string): Promise<void>;
  /** Removes the root clone and everything it holds. Idempotent. */
  destroyRoot(root: RootDisk, opId: string): Promise<void>;
  /** Creates the persistent ext4 work disk (mounted at /root in the guest) holding `contents`; returns its path. */
  createWorkDisk(req: { vmId: string; vmDir: string; sizeGib: number; contents: GuestEdits }, opId: string): Promise<string>;
  destroyWorkDisk(path: string, opId: string): Promise<void>;
  /** Writes dirs/files into an ext4 disk (root clone or work disk) without mounting it. */
  injectFiles(disk: { kind: "root"; root: RootDisk } | { kind: "work"; path: string }, edits: GuestEdits, opId: string): Promise<void>;
  /**
   * A VM's root disk cloned from a snapshot's, with the VM's clone strategy and NOTHING written into
   * it: the restored guest's page cache already describes that filesystem, and a write from outside
   * would corrupt it.
   */
  cloneRootFrom(req: { vmId: string; vmDir: string; source: string }, opId: string): Promise<RootDisk>;
  /**
   * `dest` (which must not exist) becomes a copy of `source`: a reflink where the filesystem can,
   * else a sparse copy. `spare`: the source does not change (a snapshot's disk), so a copy of it is
   * made ahead for the next call.
   */
  cloneFile(source: string, dest: string, opts: { spare: boolean }, opId: string): Promise<void>;
  /** Sources that are going away: copies made ahead of them are removed. */
  dropSpares(sources: readonly string[], opId: string): Promise<void>;
}

export interface LaunchSpec {
  readonly vmId: string;
  readonly name: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly image: ImageInfo;
  readonly rootDiskPath: string;
  readonly workDiskPath: string;
  readonly lease: Lease;
  readonly consoleLog: string;
  readonly vmDir: string;
  /** Load this saved state instead of booting; launch then leaves the guest loaded and PAUSED. */
  readonly restore?: SnapshotFiles | undefined;
}

/** What a driver leaves behind to find the VMM again (persisted in handles.vmm). */
export interface VmmHandle {
  readonly kind: string;
  readonly pid: number;
  /** QMP or Firecracker API socket. */
  readonly controlSocket: string;
  readonly vsockPath?: string | undefined;
  readonly [key: string]: unknown;
}

export interface VmmDeps {
  /** Which driver new VMs use ("qemu" | "firecracker"), resolved from config once. */
  readonly kind: string;
  launch(spec: LaunchSpec, opId: string): Promise<VmmHandle>;
  /** Graceful shutdown (ctrl-alt-del / powerdown), SIGKILL after timeoutMs; force skips the graceful part. Idempotent. */
  stop(handle: VmmHandle, opts: { timeoutMs: number; force: boolean }, opId: string): Promise<void>;
  /** True while the VMM process behind the handle is alive (pid + cmdline check). */
  isAlive(handle: VmmHandle): Promise<boolean>;
  /** Freezes or thaws the guest; throws unless the VMM then reports that state. */
  setPaused(handle: VmmHandle, paused: boolean, opId: string): Promise<void>;
  /** Saves a PAUSED guest's memory and device state into `files` (the owner's, made empty beforehand); it stays paused. */
  saveState(handle: VmmHandle, files: SnapshotFiles, opId: string): Promise<SaveResult>;
  /** Tells a running restored guest its new identity and resolves once its agent acknowledged it. */
  sendIdentity(handle: VmmHandle, identity: VmIdentity, opId: string): Promise<{ ackMs: number }>;
  /**
   * Names the VMM build and machine a saved state belongs to (binary, banger's device list,
   * accelerator): a state only loads into the same one, so a template with another is stale.
   */
  stateCompatibility(): Promise<string>;
  /**
   * Calls `onExit` once when the VMM behind the handle exits (at once if it is already gone, or
   * its pid names another process). Returns a function that stops watching.
   */
  watchExit(handle: VmmHandle, onExit: () => void): () => void;
  /**
   * The running VMM of VM `vmId` found without trusting a recorded pid (pidfile, then a /proc
   * scan for a VMM whose argv carries the id), or undefined when there is none.
   */
  find(vmId: string, kind: string): Promise<VmmHandle | undefined>;
  /** Every live VMM whose argv carries a banger VM id (a /proc scan), claimed or not. */
  listAll(): Promise<readonly FoundVmm[]>;
  /**
   * Kills a VMM no VM claims, through the root helper, which refuses unless it launched that VMM
   * (so another install's is never touched), then removes its runtime files.
   */
  killOrphan(vmm: FoundVmm, opId: string): Promise<void>;
  /**
   * Has the root helper remove what it keeps for VM `vmId`'s VMM (its run dir with pidfile and
   * sockets, its jail) when no VMM of that VM runs: a launch cut off before its pid was known
   * leaves them without a handle. Idempotent.
   */
  release(vmId: string, opId: string): Promise<void>;
}

export interface FoundVmm {
  readonly pid: number;
  readonly vmId: string;
  readonly kind: string;
}

export interface DnsDeps {
  /** Publishes NAME.vm -> ip (to guests and, through the root helper, the host). Idempotent. */
  publish(name: string, ip: string, opId: string): Promise<void>;
  unpublish(name: string, opId: string): Promise<void>;
}

/** Pinned-host-key readiness probe: resolves once `ssh ... true` succeeds against the pinned key. */
export interface SshProbe {
  waitReady(target: { ip: string; name: string }, opts: { timeoutMs: number; signal: AbortSignal }): Promise<void>;
}

/** Published ports (kernel DNAT through the root helper) of a VM's guest address. */
export interface PortsDeps {
  /** Publishes every port recorded for `vmId` to its guest (replacing what that address had). Idempotent. */
  apply(vmId: string, guest: NatGuest, opId: string): Promise<void>;
  /** Unpublishes the VM's ports from the guest's address; the records stay for the next start. Idempotent. */
  clear(vmId: string, guest: NatGuest, opId: string): Promise<void>;
  /** Publishes exactly `specs` to the guest (the helper refuses a port another guest or a host socket holds). */
  publish(guest: NatGuest, specs: readonly PortSpec[], opId: string): Promise<void>;
  /** Every guest address the root helper publishes ports to (start-up unpublishes what no running VM claims). */
  published(opId: string): Promise<readonly NatGuest[]>;
}

/** A VM's egress policy and host protections (nft sets through the root helper), keyed by its guest address. */
export interface EgressDeps {
  /** Registers the guest with its recorded policy (replacing what that address had). Idempotent. */
  apply(vmId: string, guest: NatGuest, opId: string, opts?: { forgetLearned: boolean }): Promise<void>;
  /** Takes the guest out, with what DNS taught it; the record stays for the next start. Idempotent. */
  clear(vmId: string, guest: NatGuest, opId: string): Promise<void>;
  /** Every guest address the root helper has registered (start-up removes what no running VM claims). */
  registered(opId: string): Promise<readonly NatGuest[]>;
}

export interface VmDeps {
  readonly images: ImageDeps;
  readonly network: NetworkDeps;
  readonly ports: PortsDeps;
  readonly egress: EgressDeps;
  readonly storage: StorageDeps;
  readonly vmm: VmmDeps;
  readonly dns: DnsDeps;
  readonly ssh: SshProbe;
}
