import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { detachedServices } from "../../../src/install/detached-services.js";
import { installFiles, installLayout } from "../../../src/install/layout.js";
import type { InstallMetadata } from "../../../src/install/metadata.js";
import { parseProcStat } from "../../../src/system/proc.js";

function setup(t: { after: (fn: () => void) => void }): { layout: ReturnType<typeof installLayout>; services: ReturnType<typeof detachedServices>; track: (c: ChildProcess) => ChildProcess } {
  const root = mkdtempSync(join(tmpdir(), "banger-detached-"));
  const children: ChildProcess[] = [];
  t.after(() => {
    for (const c of children) c.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });
  const layout = installLayout(root);
  mkdirSync(layout.pidDir, { recursive: true });
  const meta = { version: "0.1.0", mode: "detached", owner: { name: "x", uid: 1000, gid: 1000 }, node: process.execPath } as InstallMetadata;
  return { layout, services: detachedServices(meta, layout, { setpriv: "/usr/bin/setpriv", stopTimeoutMs: 5_000 }), track: (c) => { children.push(c); return c; } };
}

const startTime = (pid: number): number => parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8")).startTimeTicks;

function record(layout: ReturnType<typeof installLayout>, service: "bangerd" | "bangerd-root", pid: number, start: number): void {
  writeFileSync(installFiles.pidFile(layout, service), JSON.stringify({ pid, start_time: start, service }));
}

const alive = (pid: number): boolean => {
  try {
    return parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8")).state !== "Z";
  } catch {
    return false;
  }
};

void test("detached stop signals only the recorded service process: not a stranger with its pid, not its children", async (t) => {
  const { layout, services, track } = setup(t);
  assert.deepEqual(await services.status("bangerd"), { service: "bangerd", running: false, detail: "not started (no pidfile)" });

  // A pid now held by an unrelated process (the service died, the pid was reused): never signalled.
  const stranger = track(spawn("sleep", ["60"], { stdio: "ignore" }));
  await sleep(100);
  record(layout, "bangerd", stranger.pid ?? 0, startTime(stranger.pid ?? 0));
  const st = await services.status("bangerd");
  assert.equal(st.running, false);
  assert.match(st.detail, /runs sleep, not bangerd/);
  await services.stop("bangerd");
  assert.ok(alive(stranger.pid ?? 0), "the stranger lives");
  assert.ok(!existsSync(installFiles.pidFile(layout, "bangerd")), "the stale pidfile is gone");

  // The same pid with another start time: another process, not signalled either.
  record(layout, "bangerd", stranger.pid ?? 0, startTime(stranger.pid ?? 0) + 1);
  assert.match((await services.status("bangerd")).detail, /reused/);
  await services.stop("bangerd");
  assert.ok(alive(stranger.pid ?? 0));

  // The service itself (its command line names its bundle) stops on SIGTERM; a child it started in
  // its process group (a VMM in the helper's case) is left running.
  // The handler is in place before the pid is printed, so the SIGTERM always finds it.
  const script = "process.on('SIGTERM', () => process.exit(0)); const c = require('node:child_process').spawn('sleep', ['60'], { stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1000);";
  const svc = track(spawn(process.execPath, ["-e", script, "/x/dist/bin/bangerd-root.cjs"], { stdio: ["ignore", "pipe", "ignore"] }));
  const childPid = await new Promise<number>((resolve) => { svc.stdout?.once("data", (d: Buffer) => { resolve(Number(d.toString().trim())); }); });
  t.after(() => { try { process.kill(childPid, "SIGKILL"); } catch { /* gone */ } });
  record(layout, "bangerd-root", svc.pid ?? 0, startTime(svc.pid ?? 0));
  assert.deepEqual(await services.status("bangerd-root"), { service: "bangerd-root", running: true, pid: svc.pid, detail: "running (detached)" });
  await services.stop("bangerd-root");
  await new Promise((r) => { if (svc.exitCode !== null || svc.signalCode !== null) r(undefined); else svc.once("exit", r); });
  assert.equal(svc.exitCode, 0, "stopped by SIGTERM");
  assert.ok(alive(childPid), "its child was not signalled (no process-group kill)");
  assert.equal((await services.status("bangerd-root")).running, false);
});
