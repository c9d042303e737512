import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { silentLogger } from "../../../src/system/log.js";
import { openDatabase, type Db } from "../../../src/state/database.js";
import { OperationRepository } from "../../../src/state/operations.js";
import { SnapshotRepository } from "../../../src/state/snapshots.js";
import { VmRepository } from "../../../src/state/vms.js";
import { state } from "../../../src/paths/paths.js";
import type { FoundVmm, GuestEdits, ImageInfo, Lease, NatGuest, RootDisk, VmDeps, VmmHandle } from "../../../src/daemon/vm/deps.js";
import { HandleStore } from "../../../src/daemon/vm/handles.js";
import type { LifecycleEnv } from "../../../src/daemon/vm/lifecycle-env.js";
import { OperationTracker } from "../../../src/daemon/operations/tracker.js";
import { VmService } from "../../../src/daemon/vm/service.js";

export const FAKE_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeyBodyForTests0123456789abcdefABCD";
export const INSTALL_PUB = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIInstallKeyBodyForTests0123456789abcdef banger";

/**
 * Recording fakes for every lifecycle dependency. `live` models what would
 * exist on a real host (leases, disks, taps, VMMs, DNS records): acquire adds,
 * release removes, so "nothing left behind" is `live.size === 0`.
 * `failOn` injects an error into a named call; `hang` makes ssh never ready.
 */
export class FakeHost {
  readonly calls: string[] = [];
  /** VM id -> what the lifecycle asked to hear when that VM's VMM exits; tests call it to "kill" the VMM. */
  readonly exitWatchers = new Map<string, () => void>();
  /** VM id -> the VMM a /proc scan would find for it. */
  readonly foundVmms = new Map<string, VmmHandle>();
  readonly live = new Set<string>();
  readonly edits: { disk: string; edits: GuestEdits }[] = [];
  failOn = new Set<string>();
  sshReady = true;
  sshDelayMs = 0;
  vmmAlive = true;
  /** Files copied by storage.cloneFile, and identities sent to restored guests. */
  readonly clones: { source: string; dest: string }[] = [];
  /** Files in the images' root filesystems, by IMAGE:PATH. */
  readonly imageFiles = new Map<string, Buffer>();
  /** Disks grown (vm resize), as kind:disk:bytes. */
  readonly grown: string[] = [];
  readonly identities: { name: string; ip: string; mac: string }[] = [];
  failSave = false;
  compatibility = "fake-vmm-1";
  private nextIp = 2;
  private readonly leases = new Map<string, Lease>();

  /** What a host scan finds besides the VMs' own: VMMs, taps and NAT guests no VM claims. */
  readonly strayVmms: FoundVmm[] = [];
  readonly strayTaps = new Set<string>();
  readonly strayNat: NatGuest[] = [];
  /** Guest addresses the helper publishes ports to, or has egress rules for, that no VM claims. */
  readonly strayPorts: NatGuest[] = [];
  readonly strayEgress: NatGuest[] = [];
  /** banger's NAT table exists even with no guest in it. */
  emptyNatTable = false;

  /** Like failOn, with the error to throw (e.g. the RpcError of a helper that is down). */
  readonly failWith = new Map<string, Error>();

  private call(name: string): void {
    this.calls.push(name);
    if (this.failOn.has(name)) throw new Error(`injected failure in ${name}`);
    const e = this.failWith.get(name);
    if (e !== undefined) throw e;
  }

  deps(images: Map<string, ImageInfo>): VmDeps {
    return {
      images: { get: (name) => Promise.resolve(images.get(name)) },
      network: {
        lease: (vmId) => {
          this.call("network.lease");
          let l = this.leases.get(vmId);
          if (l === undefined) {
            const n = this.nextIp++;
            l = { ip: `172.16.90.${n}`, mac: `02:fc:00:00:00:${n.toString(16).padStart(2, "0")}`, tap: `tap-fc-${vmId.slice(0, 8)}`, cid: 100 + n, prefix: 24, gateway: "172.16.90.1", nameservers: ["1.1.1.1"] };
            this.leases.set(vmId, l);
          }
          this.live.add(`lease:${vmId}`);
          return Promise.resolve(l);
        },
        release: (vmId) => { this.call("network.release"); this.leases.delete(vmId); this.live.delete(`lease:${vmId}`); return Promise.resolve(); },
        attach: (vmId) => { this.call("network.attach"); this.live.add(`tap:${vmId}`); return Promise.resolve(); },
        addNat: (vmId) => { this.call("network.addNat"); this.live.add(`nat:${vmId}`); return Promise.resolve(); },
        removeNat: (vmId) => { this.call("network.removeNat"); this.live.delete(`nat:${vmId}`); return Promise.resolve(); },
        detach: (vmId) => { this.call("network.detach"); this.live.delete(`tap:${vmId}`); this.live.delete(`nat:${vmId}`); return Promise.resolve(); },
        hostView: () => {
          this.call("network.hostView");
          const held = (what: string): Lease[] => [...this.leases].filter(([id]) => this.live.has(`${what}:${id}`)).map(([, l]) => l);
          const natGuests = [...held("nat").map((l) => ({ ip: l.ip, tap: l.tap })), ...this.strayNat];
          return Promise.resolve({ taps: [...held("tap").map((l) => l.tap), ...this.strayTaps], natGuests, natInstalled: natGuests.length > 0 || this.emptyNatTable });
        },
        deleteTap: (tap) => { this.call("network.deleteTap"); this.strayTaps.delete(tap); return Promise.resolve(); },
        removeNatGuest: (g) => { this.call("network.removeNatGuest"); this.strayNat.splice(0, this.strayNat.length, ...this.strayNat.filter((x) => x.ip !== g.ip)); return Promise.resolve(); },
        removeAllNat: () => {
          this.call("network.removeAllNat");
          this.strayNat.length = 0;
          this.emptyNatTable = false;
          for (const x of [...this.live]) if (x.startsWith("nat:")) this.live.delete(x);
          return Promise.resolve();
        },
      },
      storage: {
        cloneRoot: (req) => {
          this.call("storage.cloneRoot");
          if (req.rootSizeBytes !== undefined) this.grown.push(`root:${req.vmId}:${req.rootSizeBytes}`);
          this.live.add(`root:${req.vmId}`);
          this.live.add(`root-active:${req.vmId}`);
          return Promise.resolve({ strategy: "copy", path: join(req.vmDir, "root.ext4"), vmId: req.vmId });
        },
        readImageFile: (image: ImageInfo, path: string) => Promise.resolve(this.imageFiles.get(`${image.name}:${path}`)),
        growRoot: (root: RootDisk, bytes: number) => { this.call("storage.growRoot"); this.grown.push(`root:${String(root["vmId"])}:${bytes}`); return Promise.resolve(); },
        growWorkDisk: (path: string, bytes: number) => { this.call("storage.growWorkDisk"); this.grown.push(`work:${path}:${bytes}`); return Promise.resolve(); },
        activateRoot: (root: RootDisk) => { this.call("storage.activateRoot"); this.live.add(`root-active:${String(root["vmId"])}`); return Promise.resolve(root); },
        deactivateRoot: (root: RootDisk) => { this.call("storage.deactivateRoot"); this.live.delete(`root-active:${String(root["vmId"])}`); return Promise.resolve(); },
        destroyRoot: (root: RootDisk) => { this.call("storage.destroyRoot"); this.live.delete(`root:${String(root["vmId"])}`); this.live.delete(`root-active:${String(root["vmId"])}`); return Promise.resolve(); },
        createWorkDisk: (req) => { this.call("storage.createWorkDisk"); this.edits.push({ disk: "work", edits: req.contents }); this.live.add(`work:${req.vmId}`); return Promise.resolve(join(req.vmDir, `work-${req.vmId}.ext4`)); },
        destroyWorkDisk: (path) => { this.call("storage.destroyWorkDisk"); const id = /work-([0-9a-f]+)\.ext4$/.exec(path)?.[1] ?? "?"; this.live.delete(`work:${id}`); return Promise.resolve(); },
        injectFiles: (disk, edits) => { this.call(`storage.injectFiles.${disk.kind}`); this.edits.push({ disk: disk.kind, edits }); return Promise.resolve(); },
        cloneRootFrom: (req) => {
          this.call("storage.cloneRootFrom");
          this.live.add(`root:${req.vmId}`);
          this.live.add(`root-active:${req.vmId}`);
          return Promise.resolve({ strategy: "copy", path: join(req.vmDir, "root.ext4"), vmId: req.vmId, from: req.source });
        },
        cloneFile: (source, dest) => { this.call("storage.cloneFile"); this.clones.push({ source, dest }); writeFileSync(dest, `copy of ${source}`, { flag: "wx" }); return Promise.resolve(); },
        dropSpares: () => Promise.resolve(),
      },
      vmm: {
        kind: "qemu",
        launch: (spec) => { this.call("vmm.launch"); this.live.add(`vmm:${spec.vmId}`); return Promise.resolve({ kind: "qemu", pid: 4242, controlSocket: `/run/x/${spec.vmId.slice(0, 12)}/qmp.sock`, vmId: spec.vmId }); },
        stop: (h: VmmHandle, opts) => { this.call(opts.force ? "vmm.kill" : "vmm.stop"); this.live.delete(`vmm:${String(h["vmId"])}`); return Promise.resolve(); },
        isAlive: () => Promise.resolve(this.vmmAlive),
        setPaused: (_h: VmmHandle, paused: boolean) => { this.call(paused ? "vmm.pause" : "vmm.resume"); return Promise.resolve(); },
        saveState: (_h: VmmHandle, files) => {
          this.call("vmm.saveState");
          if (this.failSave) return Promise.reject(new Error("fake save failure"));
          writeFileSync(files.state, "STATE");
          return Promise.resolve({ bytes: 5, elapsedMs: 1, vmmVersion: "sha256:fake" });
        },
        sendIdentity: (_h: VmmHandle, identity) => { this.call("vmm.sendIdentity"); this.identities.push({ name: identity.hostname, ip: identity.ip, mac: identity.mac }); return Promise.resolve({ ackMs: 1 }); },
        stateCompatibility: () => Promise.resolve(this.compatibility),
        find: (vmId: string) => Promise.resolve(this.foundVmms.get(vmId)),
        release: () => Promise.resolve(),
        listAll: () => Promise.resolve([...[...this.live].filter((x) => x.startsWith("vmm:")).map((x) => ({ pid: 4242, vmId: x.slice(4), kind: "qemu" })), ...this.strayVmms]),
        killOrphan: (vmm) => {
          this.call("vmm.killOrphan");
          this.strayVmms.splice(0, this.strayVmms.length, ...this.strayVmms.filter((x) => x.vmId !== vmm.vmId));
          return Promise.resolve();
        },
        watchExit: (h: VmmHandle, onExit) => {
          const vmId = String(h["vmId"]);
          this.exitWatchers.set(vmId, onExit);
          return () => { this.exitWatchers.delete(vmId); };
        },
      },
      egress: {
        apply: (vmId) => { this.call("egress.apply"); this.live.add(`egress:${vmId}`); return Promise.resolve(); },
        clear: (vmId, guest) => {
          this.call("egress.clear");
          this.live.delete(`egress:${vmId}`);
          this.strayEgress.splice(0, this.strayEgress.length, ...this.strayEgress.filter((g) => g.ip !== guest.ip));
          return Promise.resolve();
        },
        registered: () => Promise.resolve([...this.strayEgress]),
      },
      ports: {
        apply: () => { this.call("ports.apply"); return Promise.resolve(); },
        clear: () => { this.call("ports.clear"); return Promise.resolve(); },
        publish: (guest, specs) => {
          this.call("ports.publish");
          if (specs.length === 0) this.strayPorts.splice(0, this.strayPorts.length, ...this.strayPorts.filter((g) => g.ip !== guest.ip));
          return Promise.resolve();
        },
        published: () => Promise.resolve([...this.strayPorts]),
      },
      dns: {
        publish: (name) => { this.call("dns.publish"); this.live.add(`dns:${name}`); return Promise.resolve(); },
        unpublish: (name) => { this.call("dns.unpublish"); this.live.delete(`dns:${name}`); return Promise.resolve(); },
      },
      ssh: {
        waitReady: (_t, { signal, timeoutMs }) => {
          this.call("ssh.waitReady");
          if (this.sshReady) return new Promise((r) => setTimeout(r, this.sshDelayMs));
          return new Promise((_resolve, reject) => {
            const timer = setTimeout(() => { reject(new Error("not ssh-ready (fake timeout)")); }, timeoutMs);
            signal.addEventListener("abort", () => { clearTimeout(timer); reject(new Error("aborted")); }, { once: true });
          });
        },
      },
    };
  }
}

export interface Harness {
  readonly dir: string;
  readonly db: Db;
  readonly host: FakeHost;
  readonly vms: VmRepository;
  readonly ops: OperationRepository;
  readonly env: LifecycleEnv;
  readonly service: VmService;
  readonly images: Map<string, ImageInfo>;
  close(): void;
}

export function addImage(h: { db: Db; dir: string; images: Map<string, ImageInfo> }, name: string, flavor: "systemd" | "busybox" = "busybox"): ImageInfo {
  const imgDir = join(h.dir, "images", name);
  mkdirSync(imgDir, { recursive: true });
  for (const f of ["vmlinuz", "rootfs.ext4"]) writeFileSync(join(imgDir, f), "x");
  h.db.prepare("INSERT INTO images (name, source, flavor, kernel_path, rootfs_path, size_bytes, created_at) VALUES (?, 'test', ?, ?, ?, 1, ?)").run(name, flavor, join(imgDir, "vmlinuz"), join(imgDir, "rootfs.ext4"), new Date().toISOString());
  const info: ImageInfo = { name, flavor, kernelPath: join(imgDir, "vmlinuz"), rootfsPath: join(imgDir, "rootfs.ext4") };
  h.images.set(name, info);
  return info;
}

export function makeHarness(opts: { sshReadyTimeoutMs?: number; prefix?: string; defaultImage?: string; bootId?: string } = {}): Harness {
  const dir = mkdtempSync(join(tmpdir(), opts.prefix ?? "bgt-vm-"));
  const db = openDatabase(join(dir, "banger.db"));
  const host = new FakeHost();
  const images = new Map<string, ImageInfo>();
  const vms = new VmRepository(db);
  const ops = new OperationRepository(db);
  const env: LifecycleEnv = {
    deps: host.deps(images),
    vms,
    handles: new HandleStore(vms, dir),
    logger: silentLogger,
    stateDir: dir,
    knownHostsPath: state.knownHosts(dir),
    sshReadyTimeoutMs: opts.sshReadyTimeoutMs ?? 2_000,
    stopTimeoutMs: 1_000,
    aliveCheckMs: 20,
    bootId: opts.bootId ?? "boot-1",
    installKey: () => Promise.resolve({ keyPath: state.sshKey(dir), publicKey: INSTALL_PUB }),
    hostKey: () => Promise.resolve({ private: Buffer.from("PRIVATE"), public: FAKE_PUB }),
  };
  const service = new VmService({ env, db, snapshots: new SnapshotRepository(db), tracker: new OperationTracker(ops, silentLogger), defaults: { image: opts.defaultImage ?? "tiny", vcpus: 1, memoryMib: 256, diskGib: 1 } });
  const h: Harness = { dir, db, host, vms, ops, env, service, images, close: () => { db.close(); rmSync(dir, { recursive: true, force: true }); } };
  addImage(h, "tiny");
  return h;
}

let opCounter = 0;
export function freshOpId(): string {
  opCounter++;
  return `op-${opCounter.toString(16).padStart(12, "0")}`;
}
