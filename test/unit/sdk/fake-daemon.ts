import { mkdtempSync, rmSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { implement, Dispatcher, type Registration } from "../../../src/rpc/dispatcher.js";
import * as image from "../../../src/rpc/daemon/image.js";
import * as operation from "../../../src/rpc/daemon/operation.js";
import * as ports from "../../../src/rpc/daemon/ports.js";
import * as system from "../../../src/rpc/daemon/system.js";
import * as vm from "../../../src/rpc/daemon/vm.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { serveUnix } from "../../../src/rpc/unix-server.js";
import { createLogger } from "../../../src/system/log.js";
import type { PeerCred } from "../../../src/system/peercred.js";
import type { OperationInfo, VmInfo } from "../../../src/sdk/wire-types.js";

export interface Received {
  readonly method: string;
  readonly params: unknown;
  readonly opId: string;
}

/** How a scripted operation goes: the step states it passes through, then its end (or none: it runs until deleted). */
export interface OpScript {
  readonly steps: readonly string[];
  readonly end: "succeeded" | { readonly failedAt: string; readonly error: string } | "never";
}

export interface FakeDaemon {
  readonly socket: string;
  readonly received: Received[];
  /** The next vm.create's operation follows this script (default: two steps, then success). */
  script: OpScript;
  /** Open operation.wait long polls (a caller that gave up must close its own). */
  openWaits(): number;
  close(): Promise<void>;
}

function vmView(name: string, state: VmInfo["state"]): VmInfo {
  return {
    id: "0".repeat(32), name, dns_name: `${name}.vm`, state, image: "tiny", vcpus: 1, memory_mib: 256, disk_gib: 1, vmm: "qemu",
    ip: "172.16.90.2", mac: "02:00:00:00:00:02", tap: "tap0", pid: 42, created_at: "2026-01-01T00:00:00.000Z", started_at: null, uptime_s: 1,
    last_error: null, console_log: null, ssh: { user: "root", key_path: "/k", known_hosts_path: "/kh" }, ports: [], egress: { policy: "all", isolate: false },
  };
}

/**
 * An in-process daemon on a unix socket in a temp dir, serving the real method descriptors (so
 * the SDK's params are checked against the daemon's schemas, and the fake's results too) with
 * scripted VMs and operations. Operations advance one step per operation.wait, as a real one
 * would between long polls.
 */
export async function startFakeDaemon(): Promise<FakeDaemon> {
  const dir = mkdtempSync("/tmp/bgt-sdk-");
  const socket = join(dir, "bangerd.sock");
  const received: Received[] = [];
  const vms = new Map<string, VmInfo>();
  const ops = new Map<string, { view: OperationInfo; script: OpScript; vm: string; at: number; wake: (() => void)[] }>();
  let waits = 0;
  const fake: FakeDaemon = { socket, received, script: { steps: ["allocate", "boot"], end: "succeeded" }, openWaits: () => waits, close: () => Promise.resolve() };
  const seen = <T>(method: string, params: T, opId: string): T => {
    received.push({ method, params, opId });
    return params;
  };
  const now = (): string => new Date().toISOString();
  /** Moves an operation one state on: the next step runs, or it ends. */
  const advance = (id: string): void => {
    const op = ops.get(id);
    if (op === undefined || op.view.state !== "running") return;
    const steps = op.script.steps.map((name, i) => ({ name, state: i < op.at ? "succeeded" as const : i === op.at ? "running" as const : "pending" as const, started_at: i <= op.at ? now() : null, elapsed_ms: i < op.at ? 5 : null }));
    let state: OperationInfo["state"] = "running";
    let error: string | undefined;
    if (op.at >= op.script.steps.length && op.script.end !== "never") {
      const end = op.script.end;
      if (end === "succeeded") {
        state = "succeeded";
        vms.set(op.vm, vmView(op.vm, "running"));
      } else {
        state = "failed";
        error = end.error;
        const failed = steps.find((s) => s.name === end.failedAt);
        if (failed !== undefined) Object.assign(failed, { state: "failed", error: end.error });
        vms.delete(op.vm);
      }
    }
    if (op.at >= op.script.steps.length && op.script.end === "never") return;
    op.at++;
    op.view = { ...op.view, state, steps, revision: op.view.revision + 1, updated_at: now(), ...(error !== undefined ? { error } : {}) };
    for (const w of op.wake.splice(0)) w();
  };
  let opCount = 0;
  const begin = (kind: string, vmName: string, script: OpScript): string => {
    const id = `op${(++opCount).toString().padStart(6, "0")}`;
    ops.set(id, { view: { id, kind, target: vmName, state: "running", steps: [], created_at: now(), updated_at: now(), revision: 0 }, script, vm: vmName, at: 0, wake: [] });
    return id;
  };
  const regs: Registration<PeerCred>[] = [
    implement(system.daemonPing, (p, c) => { seen("daemon.ping", p, c.opId); return { version: "0.1.0-fake", pid: process.pid }; }),
    implement(image.imageList, (p, c) => { seen("image.list", p, c.opId); return { images: [] }; }),
    implement(vm.vmCreate, (p, c) => {
      seen("vm.create", p, c.opId);
      if (p.image !== undefined && p.image !== "tiny") throw new RpcError("not_found", `unknown image ${JSON.stringify(p.image)}; list them with: banger image list`);
      const name = p.name ?? "fake-1";
      vms.set(name, vmView(name, "creating"));
      const id = begin("vm.create", name, fake.script);
      return { operation_id: id, vm: { id: "0".repeat(32), name } };
    }),
    implement(operation.operationWait, async (p, c) => {
      seen("operation.wait", p, c.opId);
      const op = ops.get(p.id);
      if (op === undefined) throw new RpcError("not_found", `no operation ${p.id}`);
      if (op.view.revision <= p.after_revision && op.view.state === "running") {
        waits++;
        // The first change comes a moment later, as a real operation's would; "never" ones hold to the timeout.
        const tick = setTimeout(() => { advance(p.id); }, 20);
        await new Promise<void>((r) => {
          const t = setTimeout(r, p.timeout_ms);
          op.wake.push(() => { clearTimeout(t); r(); });
        });
        clearTimeout(tick);
        waits--;
      }
      return op.view;
    }),
    implement(vm.vmGet, (p, c) => {
      seen("vm.get", p, c.opId);
      const v = vms.get(p.name);
      if (v === undefined) throw new RpcError("not_found", `no VM named ${p.name}`);
      return v;
    }),
    implement(vm.vmList, (p, c) => { seen("vm.list", p, c.opId); return { vms: [...vms.values()] }; }),
    implement(vm.vmDelete, (p, c) => {
      seen("vm.delete", p, c.opId);
      const v = vms.get(p.name);
      if (v === undefined) throw new RpcError("not_found", `no VM named ${p.name}`);
      if (p.force !== true && v.state === "running") throw new RpcError("conflict", `VM ${p.name} is running`);
      vms.delete(p.name);
      for (const op of ops.values()) if (op.vm === p.name && op.view.state === "running") {
        op.view = { ...op.view, state: "failed", error: `VM ${p.name} is being deleted`, revision: op.view.revision + 1 };
        for (const w of op.wake.splice(0)) w();
      }
      return { id: v.id, name: v.name, deleted: true as const };
    }),
    implement(ports.vmPortAdd, (p, c) => { seen("vm.port_add", p, c.opId); return { name: p.name, running: true, ports: p.ports }; }),
  ];
  const server = await serveUnix({ socketPath: socket, dispatcher: new Dispatcher(regs), logger: createLogger({ write: () => undefined }), allowedUids: [process.getuid?.() ?? 0] });
  // Tracked so close() ends connections a test left open.
  const conns = new Set<Socket>();
  server.on("connection", (s: Socket) => { conns.add(s); s.once("close", () => conns.delete(s)); });
  fake.close = async () => {
    for (const op of ops.values()) for (const w of op.wake.splice(0)) w();
    for (const s of conns) s.destroy();
    await new Promise<void>((r) => server.close(() => { r(); }));
    rmSync(dir, { recursive: true, force: true });
  };
  return fake;
}
