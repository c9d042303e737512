import { rm, stat } from "node:fs/promises";
import { type BuiltImage, buildImage, ImageInputError, importImage, parseFrom } from "../../image/build.js";
import type { OnProgress, ProgressEvent } from "../../image/progress.js";
import { type ExecDefaults, NO_EXEC_DEFAULTS } from "../../model/exec-defaults.js";
import { state } from "../../paths/paths.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { imageBuild, imageDelete, imageGet, imageImport, imageList, type ImageView } from "../../rpc/daemon/image.js";
import { RpcError } from "../../rpc/errors.js";
import { type ImageRecord, ImageRepository } from "../../state/images.js";
import { OperationRepository } from "../../state/operations.js";
import type { PeerCred } from "../../system/peercred.js";
import type { DaemonEnv } from "../env.js";
import { OperationTracker, type TrackedOperation } from "../operations/tracker.js";
import type { ImageDeps, ImageInfo } from "../vm/deps.js";

/** Steps shown up front for each kind of build (more may be appended as they happen). */
const PLANS: Record<string, readonly string[]> = {
  "debian": ["debootstrap", "kernel", "initrd", "rootfs.ext4"],
  "busybox": ["kernel", "initrd", "rootfs tree", "rootfs.ext4"],
  "dir": ["kernel", "initrd", "rootfs.ext4"],
  "tar": ["unpack", "kernel", "initrd", "rootfs.ext4"],
  "oci": ["read archive", "layers", "banger init", "kernel", "initrd", "rootfs.ext4", "owners"],
};

function execDefaultsView(d: ExecDefaults): ImageView["exec_defaults"] {
  return { user: d.user, env: d.env.map(([k, v]) => [k, v]), workdir: d.workdir };
}

function toView(rec: ImageRecord, usedBy: string[]): ImageView {
  return {
    name: rec.name, source: rec.source, flavor: rec.flavor, kernel_path: rec.kernelPath, vmlinux_path: rec.vmlinuxPath,
    initrd_path: rec.initrdPath, rootfs_path: rec.rootfsPath, kernel_version: rec.kernelVersion, size_bytes: rec.sizeBytes,
    created_at: rec.createdAt, used_by: usedBy,
    exec_defaults: execDefaultsView(rec.execDefaults ?? NO_EXEC_DEFAULTS),
  };
}

function toRecord(b: BuiltImage): ImageRecord {
  return {
    name: b.name, source: b.source, flavor: b.flavor, kernelPath: b.kernelPath, vmlinuxPath: b.vmlinuxPath, initrdPath: b.initrdPath,
    rootfsPath: b.rootfsPath, kernelVersion: b.kernelVersion, sizeBytes: b.sizeBytes, createdAt: new Date().toISOString(),
    execDefaults: b.execDefaults,
  };
}

/** Bridge the builder's start/done events to the operation tracker's step events. */
function trackerProgress(op: TrackedOperation | undefined, extra: OnProgress | undefined): OnProgress {
  const started = new Map<string, string>();
  return (e: ProgressEvent) => {
    extra?.(e);
    if (op === undefined) return;
    if (e.state === "start") {
      const at = new Date().toISOString();
      started.set(e.step, at);
      op.onProgress({ step: e.step, kind: "started", startedAt: at, elapsedMs: 0 });
    } else {
      op.onProgress({ step: e.step, kind: "succeeded", startedAt: started.get(e.step) ?? new Date().toISOString(), elapsedMs: e.elapsedMs ?? 0 });
    }
  };
}

function inputError(e: unknown): unknown {
  return e instanceof ImageInputError ? new RpcError("bad_params", e.message) : e;
}

/**
 * Image builds and the image records. One build per name at a time: a second
 * request for the same name (e.g. two `vm create` racing for the default
 * image) joins the running build instead of starting another.
 */
export class ImageService implements ImageDeps {
  readonly repo: ImageRepository;
  private readonly tracker: OperationTracker;
  /** Builds in flight by image name, with the operation that tracks each (absent for imports). */
  private readonly building = new Map<string, { readonly done: Promise<ImageRecord>; readonly opId: string | undefined }>();

  constructor(private readonly env: DaemonEnv) {
    this.repo = new ImageRepository(env.db);
    this.tracker = new OperationTracker(new OperationRepository(env.db), env.logger);
  }

  async get(name: string): Promise<ImageInfo | undefined> {
    const rec = this.repo.get(name);
    if (rec === undefined) return undefined;
    return Promise.resolve({ name: rec.name, flavor: rec.flavor, kernelPath: rec.kernelPath, vmlinuxPath: rec.vmlinuxPath ?? undefined, initrdPath: rec.initrdPath ?? undefined, rootfsPath: rec.rootfsPath, createdAt: rec.createdAt });
  }

  /** Start a build in the background, tracked as operation opId. Input errors are reported synchronously. */
  async startBuild(params: { name?: string | undefined; from?: string | undefined; kernel?: string | undefined; initrd?: string | undefined; force?: boolean | undefined }, opId: string): Promise<{ operation_id: string; image: string }> {
    const from = params.from ?? "debian:bookworm";
    const source = await parseFrom(from).catch((e: unknown) => { throw inputError(e); });
    const name = params.name ?? (source.kind === "busybox" ? "tiny" : source.kind === "debian" ? this.env.config.defaults.image : undefined);
    if (name === undefined) throw new RpcError("bad_params", `--name is required when building from ${from}`);
    const running = this.building.get(name);
    if (running !== undefined) {
      // Two `vm run`s on a fresh host both ask for the default image: the second follows the first build.
      if (running.opId !== undefined && params.force !== true) return { operation_id: running.opId, image: name };
      throw new RpcError("conflict", `image ${name} is already being built`);
    }
    if (params.force !== true && this.repo.get(name) !== undefined) throw new RpcError("conflict", `image ${name} already exists; use --force to rebuild it`);
    const op = this.tracker.begin(opId, "image.build", name, PLANS[source.kind] ?? []);
    // A cancelled build kills its running tool and removes its temp dir: no partial image is left.
    const ac = new AbortController();
    op.onCancel((reason) => { ac.abort(reason); });
    const run = this.runBuild(name, opId, () => buildImage({ name, source, kernel: params.kernel, initrd: params.initrd, force: params.force }, {
      stateDir: this.env.layout.stateDir, runner: this.env.runner, uid: process.getuid?.() ?? 0, onProgress: trackerProgress(op, undefined), signal: ac.signal,
    }));
    run.then((rec) => { op.succeed({ image: rec.name }); }, (e: unknown) => { op.fail(e); });
    return { operation_id: opId, image: name };
  }

  private runBuild(name: string, opId: string | undefined, build: () => Promise<BuiltImage>): Promise<ImageRecord> {
    const p = (async () => {
      const built = await build();
      const rec = toRecord(built);
      this.repo.upsert(rec);
      return rec;
    })().finally(() => { this.building.delete(name); });
    this.building.set(name, { done: p, opId });
    return p;
  }

  view(name: string): ImageView {
    const rec = this.repo.get(name);
    if (rec === undefined) throw new RpcError("not_found", `no image named ${JSON.stringify(name)}; see "banger image ls"`);
    return toView(rec, this.repo.usedBy(name));
  }

  async delete(name: string): Promise<void> {
    if (this.building.has(name)) throw new RpcError("conflict", `image ${name} is being built; wait for the build to finish`);
    const rec = this.repo.get(name);
    if (rec === undefined) throw new RpcError("not_found", `no image named ${JSON.stringify(name)}`);
    const users = this.repo.usedBy(name);
    if (users.length > 0) throw new RpcError("conflict", `image ${name} is used by VM(s) ${users.join(", ")}; delete them first`);
    // Row first: a VM create racing with this sees "unknown image", never half-deleted files.
    this.repo.delete(name);
    await rm(state.imageDir(this.env.layout.stateDir, name), { recursive: true, force: true });
  }

  async import(p: { name: string; kernel: string; rootfs: string; initrd?: string | undefined; flavor?: "systemd" | "busybox" | undefined; force?: boolean | undefined }): Promise<ImageView> {
    if (this.building.has(p.name)) throw new RpcError("conflict", `image ${p.name} is being built`);
    if (p.force !== true && this.repo.get(p.name) !== undefined) throw new RpcError("conflict", `image ${p.name} already exists; use --force to replace it`);
    for (const f of [p.kernel, p.rootfs, ...(p.initrd === undefined ? [] : [p.initrd])]) {
      const st = await stat(f).catch(() => undefined);
      if (st?.isFile() !== true) throw new RpcError("bad_params", `${f} is not a readable regular file`);
    }
    const rec = await this.runBuild(p.name, undefined, () => importImage({ name: p.name, kernel: p.kernel, rootfs: p.rootfs, initrd: p.initrd, flavor: p.flavor ?? "systemd", force: p.force }, {
      stateDir: this.env.layout.stateDir, runner: this.env.runner, uid: process.getuid?.() ?? 0,
    })).catch((e: unknown) => { throw inputError(e); });
    return toView(rec, []);
  }
}

const services = new WeakMap<DaemonEnv, ImageService>();

/** The daemon's one ImageService (one build registry per daemon). Also the `images` dependency of VM create. */
export function imageService(env: DaemonEnv): ImageService {
  let s = services.get(env);
  if (s === undefined) {
    s = new ImageService(env);
    services.set(env, s);
  }
  return s;
}

export function imageMethods(env: DaemonEnv): Registration<PeerCred>[] {
  const service = imageService(env);
  return [
    implement(imageBuild, (p, ctx) => service.startBuild(p, ctx.opId)),
    implement(imageList, () => ({ images: service.repo.list().map((r) => toView(r, service.repo.usedBy(r.name))) })),
    implement(imageGet, (p) => service.view(p.name)),
    implement(imageDelete, async (p) => {
      await service.delete(p.name);
      return { name: p.name, deleted: true as const };
    }),
    implement(imageImport, (p) => service.import(p)),
  ];
}
