import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { closeSync, copyFileSync, chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { RpcError } from "../../../src/rpc/errors.js";
import { openManagedRoot } from "../../../src/roothelper/fs/managed-root.js";
import { VmmProcesses } from "../../../src/roothelper/vmm-processes.js";
import { needsRoot } from "../../helpers/requirements.js";

const VM = "ab".repeat(16);
const OTHER_VM = "cd".repeat(16);
const base = mkdtempSync("/tmp/bgt-vmm-procs-");
after(() => { rmSync(base, { recursive: true, force: true }); });
const exe = join(base, "qemu-system-x86_64");
copyFileSync("/bin/sh", exe);
chmodSync(exe, 0o755);

/** A root process that looks like VM's qemu: sh under qemu's name, the VM id in its argv, waiting in `read` (no child to outlive it). */
function lookAlike(vmId: string): ReturnType<typeof spawn> {
  return spawn(exe, ["-c", "read x", `banger-${vmId}`], { stdio: ["pipe", "ignore", "ignore"] });
}

function refused(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof RpcError && re.test(e.message));
}

void test("a root VMM is signalled only when this helper, or an earlier run of it, launched it", { skip: needsRoot() }, async () => {
  const recordsDir = mkdtempSync(join(base, "records-"));
  // The record is <vm id>/launch in the VM's run dir, which a launch has made.
  mkdirSync(join(recordsDir, VM));
  const records = openManagedRoot("VMM run dirs", recordsDir, 0);
  const launched = lookAlike(VM);
  const stranger = lookAlike(VM);
  await new Promise((r) => setTimeout(r, 200));
  const pid = launched.pid ?? 0;
  new VmmProcesses(4242, records).track(pid, VM);
  // A restarted helper: a new instance, the same records.
  const restarted = new VmmProcesses(4242, records);
  restarted.signal("pid", pid, VM, 0);
  refused(() => { restarted.signal("pid", pid, OTHER_VM, "SIGTERM"); }, /not the one of/);
  refused(() => { restarted.signal("pid", stranger.pid ?? 0, VM, "SIGSTOP"); }, /runs as uid 0\/0\/0\/0; the helper signals only VMMs it launched/);
  assert.equal(await restarted.kill("pid", pid, VM, 5000), true);
  // The pid is gone now; whatever gets it next is judged afresh (its start time differs from the record's).
  refused(() => { restarted.signal("pid", pid, VM, "SIGTERM"); }, /does not exist|has exited/);
  stranger.kill("SIGKILL");
  closeSync(records.fd);
});

void test("a recycled pid is never signalled: the launched VMM exits and a root look-alike of the same VM gets its pid", { skip: needsRoot(), timeout: 30_000 }, async (t) => {
  const recordsDir = mkdtempSync(join(base, "records-"));
  mkdirSync(join(recordsDir, VM));
  const records = openManagedRoot("VMM run dirs", recordsDir, 0);
  const first = lookAlike(VM);
  // Whatever fails, no look-alike may outlive the test (a live child keeps the test file from exiting).
  const spawned = [first];
  t.after(() => { for (const c of spawned) c.kill("SIGKILL"); closeSync(records.fd); });
  await new Promise((r) => setTimeout(r, 200));
  const pid = first.pid ?? 0;
  const helper = new VmmProcesses(4242, records);
  helper.track(pid, VM);
  first.kill("SIGKILL");
  await new Promise((r) => first.once("exit", r));
  // Recycle the pid for real: ns_last_pid makes the kernel hand out `pid` next (other forks may
  // take it first on a busy host, hence the retries).
  let reused: ReturnType<typeof spawn> | undefined;
  for (let i = 0; i < 100 && reused === undefined; i++) {
    writeFileSync("/proc/sys/kernel/ns_last_pid", String(pid - 1));
    const child = lookAlike(VM);
    spawned.push(child);
    if (child.pid === pid) reused = child;
    else child.kill("SIGKILL");
  }
  assert.ok(reused !== undefined, `pid ${pid} was handed out again`);
  await new Promise((r) => setTimeout(r, 200));
  // Same argv, same VM id, same pid, root: only the start time in the record tells them apart.
  for (const judge of [helper, new VmmProcesses(4242, records)]) {
    refused(() => { judge.signal("pid", pid, VM, "SIGTERM"); }, /runs as uid 0\/0\/0\/0; the helper signals only VMMs it launched/);
    await assert.rejects(judge.kill("pid", pid, VM, 1000), /runs as uid 0\/0\/0\/0/);
  }
  assert.equal(reused.exitCode, null);
  assert.equal(reused.signalCode, null);
});
