import type { CliContext, Command, InterruptHook } from "../../../src/cli/command.js";
import { operationMethods } from "../../../src/daemon/methods/operation.js";
import { vmMethods } from "../../../src/daemon/methods/vm.js";
import { resolveLayout } from "../../../src/paths/paths.js";
import { Dispatcher, implement } from "../../../src/rpc/dispatcher.js";
import { imageBuild, imageGet } from "../../../src/rpc/daemon/image.js";
import { NO_EXEC_DEFAULTS } from "../../../src/model/exec-defaults.js";
import { ImageRepository } from "../../../src/state/images.js";
import { OperationTracker } from "../../../src/daemon/operations/tracker.js";
import { silentLogger } from "../../../src/system/log.js";
import { PROTOCOL_VERSION } from "../../../src/rpc/envelope.js";
import { RpcError } from "../../../src/rpc/errors.js";
import type { PeerCred } from "../../../src/system/peercred.js";
import { UNRESTRICTED } from "../../../src/state/egress.js";
import { FakeRunner } from "../../../src/system/runner.js";
import type { readGuestUsage } from "../../../src/daemon/vm/guest-stats.js";
import { addImage, type Harness } from "./fakes.js";

export interface Cli {
  readonly ctx: CliContext;
  out: string;
  err: string;
  readonly opIds: string[];
  run(cmd: Command, args: string[]): Promise<number>;
}

/** A CliContext whose daemon calls go through the real dispatcher and schemas, in memory. */
export function cli(h: Harness, opts: { tty?: boolean; builds?: string[]; lostRace?: boolean; interrupts?: InterruptHook; guestUsage?: typeof readGuestUsage } = {}): Cli {
  // A stand-in image.build: records the request, completes an operation, registers the image.
  const tracker = new OperationTracker(h.ops, silentLogger);
  const fakeImageBuild = implement(imageBuild, (p, callCtx) => {
    const name = p.name ?? "default";
    opts.builds?.push(`${name}@${callCtx.opId}`);
    if (opts.lostRace === true) {
      // Another client's build finished just before this request arrived.
      addImage(h, name, "systemd");
      throw new RpcError("conflict", `image ${name} already exists; use --force to rebuild it`);
    }
    const op = tracker.begin(callCtx.opId, "image.build", name, ["build"]);
    addImage(h, name, "systemd");
    op.succeed({ name });
    return { operation_id: callCtx.opId, image: name };
  });
  // image.get as the daemon answers it, from the images table (vm ssh/run read the image's exec defaults).
  const fakeImageGet = implement(imageGet, (p) => {
    const rec = new ImageRepository(h.db).get(p.name);
    if (rec === undefined) throw new RpcError("not_found", `no image ${p.name}`);
    const d = rec.execDefaults ?? NO_EXEC_DEFAULTS;
    return {
      name: rec.name, source: rec.source, flavor: rec.flavor, kernel_path: rec.kernelPath, vmlinux_path: rec.vmlinuxPath, initrd_path: rec.initrdPath,
      rootfs_path: rec.rootfsPath, kernel_version: rec.kernelVersion, size_bytes: rec.sizeBytes, created_at: rec.createdAt, used_by: [],
      exec_defaults: { user: d.user, env: d.env.map(([k, v]): [string, string] => [k, v]), workdir: d.workdir },
    };
  });
  const dispatcher = new Dispatcher<PeerCred>([...vmMethods({ service: h.service, reconciled: Promise.resolve(), stateDir: h.dir, runner: new FakeRunner(), db: h.db, defaultEgress: UNRESTRICTED, ...(opts.guestUsage !== undefined ? { guestUsage: opts.guestUsage } : {}) }), ...operationMethods(h.ops, new AbortController().signal), fakeImageBuild, fakeImageGet]);
  const state = {
    out: "",
    err: "",
    opIds: [] as string[],
  };
  const ctx: CliContext = {
    layout: resolveLayout({ BANGER_STATE_DIR: h.dir, BANGER_RUNTIME_DIR: h.dir }),
    stdout: { write: (s: string) => { state.out += s; } },
    stderr: { write: (s: string) => { state.err += s; }, isTTY: opts.tty === true },
    env: {},
    opId: `op-cli${Math.random().toString(36).slice(2, 12)}`,
    dial: { label: "no daemon in this test", open: () => { throw new Error("no daemon in this test"); } },
    // Never the test process's own SIGINT.
    interrupts: opts.interrupts ?? (() => () => undefined),
    call: async (method, params, _timeoutMs, opId) => {
      const id = opId ?? ctx.opId;
      state.opIds.push(id);
      const outcome = await dispatcher.dispatch(JSON.stringify({ version: PROTOCOL_VERSION, method, params, op_id: id }), { pid: 1, uid: 0, gid: 0 });
      if (!outcome.response.ok) throw new RpcError(outcome.response.error.code, outcome.response.error.message, id);
      // As the real client: the dispatcher already checked the result against its schema.
      return outcome.response.result as never;
    },
  };
  return {
    ctx,
    get out() { return state.out; },
    set out(v: string) { state.out = v; },
    get err() { return state.err; },
    set err(v: string) { state.err = v; },
    opIds: state.opIds,
    run: (cmd, args) => cmd.run(args, ctx),
  };
}

