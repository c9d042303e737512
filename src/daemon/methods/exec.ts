import { implement, type CallContext, type Registration } from "../../rpc/dispatcher.js";
import { vmExecStream, vmFileList, vmFileRead, vmFileRemove, vmFileWrite } from "../../rpc/daemon/exec.js";
import { RpcError } from "../../rpc/errors.js";
import { FrameConn } from "../../rpc/frame-conn.js";
import type { ExecDefaults } from "../../model/exec-defaults.js";
import type { VmRecord } from "../../state/vms.js";
import { effectiveExecOptions } from "../../system/exec-defaults.js";
import type { Logger } from "../../system/log.js";
import type { PeerCred } from "../../system/peercred.js";
import { quoteForRemoteShell } from "../../system/shell-quote.js";
import { remoteExecCommand } from "../../system/ssh-exec.js";
import { bridgeChannel, PID_ANNOUNCE, type BridgeOptions } from "../exec/bridge.js";
import { fileFailure, listFilesArgv, parseListing, readFileArgv, removeFileArgv, writeFileArgv } from "../exec/file-commands.js";
import type { ExecPool, ExecTarget } from "../exec/pool.js";
import type { VmService } from "../vm/service.js";

export interface ExecMethodsEnv {
  readonly service: VmService;
  readonly pool: ExecPool;
  readonly logger: Logger;
  readonly reconciled: Promise<void>;
  /** The user, env and workdir the VM's image says commands run with (an OCI image's config). */
  readonly execDefaults: (image: string) => ExecDefaults;
}

const LIST_OUTPUT_LIMIT = 16 * 1024 * 1024;

function targetOf(vm: VmRecord): ExecTarget {
  if (vm.state === "paused") throw new RpcError("conflict", `VM ${vm.name} is paused; resume it with: banger vm resume ${vm.name}`);
  if (vm.state !== "running" || vm.handles.ip === undefined) throw new RpcError("conflict", `VM ${vm.name} is ${vm.state}; start it with: banger vm start ${vm.name}`);
  const hostKeyPub = vm.handles.host_key_pub ?? "";
  return { id: vm.id, name: vm.name, ip: vm.handles.ip, hostKeyPub, generation: `${vm.startedAt ?? ""}|${vm.handles.ip}|${hostKeyPub}` };
}

/** Runs a file command to its end and returns its stdout, for the plain (non-streaming) file calls. */
async function capture(env: ExecMethodsEnv, target: ExecTarget, argv: string[], what: string, opId: string): Promise<string> {
  const { channel, exitStatus } = await env.pool.open(target, { command: quoteForRemoteShell(argv) }, opId);
  return new Promise((resolve, reject) => {
    const out: Buffer[] = [];
    let size = 0;
    let err = "";
    channel.on("data", (c: Buffer) => {
      size += c.length;
      if (size > LIST_OUTPUT_LIMIT) channel.close();
      else out.push(c);
    });
    channel.stderr.on("data", (c: Buffer) => { if (err.length < 4096) err += c.toString("utf8"); });
    channel.on("close", () => {
      const status = exitStatus();
      if (size > LIST_OUTPUT_LIMIT) reject(new RpcError("operation_failed", `${what} in ${target.name}: the answer exceeds ${LIST_OUTPUT_LIMIT} bytes`, opId));
      else if (status === undefined) reject(new RpcError("unavailable", `the SSH connection to ${target.name} closed during ${what}`, opId));
      else if (status.code !== 0) {
        const f = fileFailure(what, target.name)(status, err.trim());
        reject(new RpcError(f.code === "not_found" ? "not_found" : "operation_failed", f.message, opId));
      } else resolve(Buffer.concat(out).toString("utf8"));
    });
    channel.end();
  });
}

/**
 * vm.exec and vm.file_*: each opens a channel on the VM's pooled SSH connection before answering
 * (so a stopped VM or a refused host key is the call's error), then streams over the upgraded
 * client connection.
 */
export function execMethods(env: ExecMethodsEnv): Registration<PeerCred>[] {
  const after = <T>(fn: () => T | Promise<T>): Promise<T> => env.reconciled.then(fn);
  /** A signal to the command's pid over a channel of its own (dropbear ignores SSH signal requests). */
  const killer = (target: ExecTarget, opId: string) => (pid: number, signal: string): void => {
    // Urgent: a signal must not queue behind the very commands it is meant to stop.
    void env.pool.open(target, { command: quoteForRemoteShell(["kill", "-s", signal, String(pid)]) }, opId, true).then(
      ({ channel }) => { channel.resume(); channel.stderr.resume(); channel.end(); },
      (e: unknown) => { env.logger.warn("exec signal not delivered", { op_id: opId, vm: target.name, signal, error: e instanceof Error ? e.message : String(e) }); },
    );
  };
  const stream = async (ctx: CallContext<PeerCred>, name: string, command: string, bridge: Omit<BridgeOptions, "opId" | "vm" | "logger" | "pid">, pty?: { cols: number; rows: number }): Promise<{ opened: true }> => {
    const target = targetOf(env.service.mustGet(name));
    const pid = bridge.kind === "exec" ? { stream: pty === undefined ? ("stderr" as const) : ("stdout" as const), kill: killer(target, ctx.opId) } : undefined;
    const opened = await env.pool.open(target, pty === undefined ? { command } : { command, pty }, ctx.opId);
    env.logger.info("exec opened", { op_id: ctx.opId, vm: target.name, method: ctx.method, tty: pty !== undefined });
    ctx.upgrade((conn, head) => { bridgeChannel(opened, new FrameConn(conn, head), { ...bridge, ...(pid === undefined ? {} : { pid }), opId: ctx.opId, vm: target.name, logger: env.logger }); });
    return { opened: true };
  };
  return [
    implement(vmExecStream, (p, ctx) => after(() => {
      // docker's rule, here so the CLI and the SDK agree: the image's defaults unless the call gives its own.
      const command = remoteExecCommand(p.argv, effectiveExecOptions(env.execDefaults(env.service.mustGet(p.name).image), {
        env: Object.entries(p.env ?? {}),
        ...(p.cwd !== undefined ? { workdir: p.cwd } : {}),
        ...(p.user !== undefined ? { user: p.user } : {}),
      }));
      // The script ends in `exec`, so the pid it announces is the command's own.
      return stream(ctx, p.name, `${PID_ANNOUNCE}; ${command}`, { kind: "exec" }, p.tty);
    })),
    implement(vmFileRead, (p, ctx) => after(() => stream(ctx, p.name, quoteForRemoteShell(readFileArgv(p.path)), { kind: "file", failure: fileFailure(`reading ${p.path}`, p.name) }))),
    implement(vmFileWrite, (p, ctx) => after(() => stream(ctx, p.name, quoteForRemoteShell(writeFileArgv(p.path, p.mode)), { kind: "file", failure: fileFailure(`writing ${p.path}`, p.name) }))),
    implement(vmFileList, (p, ctx) => after(async () => {
      const out = await capture(env, targetOf(env.service.mustGet(p.name)), listFilesArgv(p.path), `listing ${p.path}`, ctx.opId);
      return { entries: parseListing(out) };
    })),
    implement(vmFileRemove, (p, ctx) => after(async () => {
      await capture(env, targetOf(env.service.mustGet(p.name)), removeFileArgv(p.path, p.recursive ?? false), `removing ${p.path}`, ctx.opId);
      return { removed: true as const };
    })),
  ];
}
