import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { unixHelperClient } from "../../../src/daemon/helper-client.js";
import { helperVmFiles } from "../../../src/paths/paths.js";
import { newOpId } from "../../../src/rpc/opid.js";
import { systemRunner } from "../../../src/system/runner.js";
import type { SnapshotFiles, VmSpec } from "../../../src/vmm/driver.js";
import { destroyWorld, driverOf, makeVm, makeWorld, ping, processesUnder, vmmWorldSkip, waitForConsole, type World } from "../../helpers/vmm-world.js";

/*
 * Save and restore through the real helper (issue 17): boot the tiny image under qemu TCG, let a
 * ticker print its count and the guest's uptime on the console, pause, save, kill the VMM, launch a
 * new one from the files (on a new tap), resume, and check the guest CONTINUED: the count goes on
 * from where it was and uptime from the saved value (a reboot would start both at 0). The same
 * through the Firecracker double.
 */

const TICKER = `#!/bin/sh
i=0
while :; do
  read up rest < /proc/uptime
  echo "banger-tick $i up=$up"
  i=$((i+1))
  sleep 1
done
`;
/** The tiny image's inittab plus the ticker, started once by init with the console as its stdout. */
const INITTAB = `::sysinit:/etc/init.d/rcS
::once:/usr/bin/banger-ticker
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
`;

interface Tick {
  readonly n: number;
  readonly up: number;
}

function ticks(spec: VmSpec, fromOffset = 0): Tick[] {
  const text = existsSync(spec.consoleLog) ? readFileSync(spec.consoleLog, "utf8").slice(fromOffset) : "";
  return [...text.matchAll(/banger-tick ([0-9]+) up=([0-9.]+)/g)].map((m) => ({ n: Number(m[1]), up: Number(m[2]) }));
}

async function waitForTick(spec: VmSpec, fromOffset: number, atLeast: number, timeoutMs: number): Promise<Tick> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const last = ticks(spec, fromOffset).at(-1);
    if (last !== undefined && last.n >= atLeast) return last;
    await sleep(50);
  }
  throw new Error(`no banger-tick >= ${atLeast} within ${timeoutMs} ms:\n${readFileSync(spec.consoleLog, "utf8").slice(fromOffset).slice(-2000)}`);
}

/** The snapshot's files as the daemon makes them: empty, the owner's, 0600, beneath the state dir. */
function snapshotFiles(w: World, id: string): SnapshotFiles {
  const dir = join(w.stateDir, "snapshots", id);
  mkdirSync(dir, { recursive: true });
  const files = { state: join(dir, "vmstate"), memory: join(dir, "memory") };
  for (const f of Object.values(files)) writeFileSync(f, "", { mode: 0o600 });
  return files;
}

async function newTap(w: World, tap: string): Promise<void> {
  await w.ns.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"]);
  await w.ns.run(["ip", "link", "set", tap, "master", "br0"]);
  await w.ns.run(["ip", "link", "set", tap, "up"]);
}

async function scenario(t: { diagnostic(msg: string): void }, kind: "qemu" | "firecracker"): Promise<void> {
  const w = await makeWorld(kind === "qemu" ? "sq" : "sfc");
  try {
    const helper = unixHelperClient(w.helperSocket);
    const driver = driverOf(kind, helper, w);
    const vmId = (kind === "qemu" ? "5a" : "5f").repeat(16);
    const spec = await makeVm(w, vmId, kind, [
      { path: "/usr/bin/banger-ticker", data: TICKER, mode: 0o755 },
      { path: "/etc/inittab", data: INITTAB, mode: 0o644 },
    ]);
    const files = snapshotFiles(w, `s-${kind}`);
    await systemRunner.run(["chown", "-R", `${w.user.uid}:${w.user.gid}`, join(w.stateDir, "snapshots")]);

    const source = await driver.launch(spec, newOpId());
    await waitForConsole(spec, "banger: tiny guest ready", 0, 120_000);
    await waitForTick(spec, 0, 2, 60_000);

    // A running guest is refused: its memory would change under the copy.
    await assert.rejects(driver.saveState(source, files, newOpId()), /not paused; pause it first/);

    await driver.setPaused(source, true, newOpId());
    const before = ticks(spec).at(-1);
    assert.ok(before !== undefined);
    const saved = await driver.saveState(source, files, newOpId());
    t.diagnostic(`${kind}: save ${saved.elapsedMs} ms, ${(saved.bytes / 1048576).toFixed(1)} MiB, ${saved.vmmVersion}`);
    assert.match(saved.vmmVersion, /^sha256:[0-9a-f]{64}$/);
    assert.ok(saved.bytes > 1_000_000, `a 256 MiB guest's state is megabytes, not ${saved.bytes} bytes`);
    assert.equal(statSync(files.state).size + statSync(files.memory).size, saved.bytes);
    assert.equal(statSync(files.state).uid, w.user.uid, "the state file stays the owner's");
    assert.equal(await driver.isRunning(source), true, "the source VMM still runs after the save");
    // The run dir holds only what outlives a request: no migration socket, no Firecracker snapshot copy.
    for (const leaf of ["migrate.sock", "snapshot.vmstate", "snapshot.mem"]) assert.equal(existsSync(join(helperVmFiles.vmDir(w.base, vmId), leaf)), false, `${leaf} removed`);
    const killed = await driver.stop(source, { timeoutMs: 1000, force: true }, newOpId());
    assert.equal(killed.how, "killed");

    // A snapshot loads only into the same machine: another memory size makes the VMM give up, and the error says why.
    if (kind === "qemu") {
      const wrong = await driver.launch({ ...spec, memoryMib: 512, restoreFrom: files }, newOpId()).then(() => undefined, (e: unknown) => e);
      assert.ok(wrong instanceof Error && /while loading the saved state.*: .*(ramblock|mismatch|load of migration failed).*\(from \S+vmm\.log\)/i.test(wrong.message), `refused, naming qemu's log line: ${String(wrong)}`);
      t.diagnostic(`${kind}: wrong memory size refused: ${wrong.message}`);
      assert.equal(existsSync(helperVmFiles.vmDir(w.base, vmId)), false, "a failed restore leaves no run dir");
    }

    const tap2 = `tap-fc-${vmId.slice(0, 6)}02`;
    await newTap(w, tap2);
    const offset = readFileSync(spec.consoleLog, "utf8").length;
    const t0 = Date.now();
    const restored = await driver.launch({ ...spec, tap: tap2, restoreFrom: files }, newOpId());
    const loadedMs = Date.now() - t0;
    assert.equal(await driver.isRunning(restored), true);
    await sleep(1500);
    assert.deepEqual(ticks(spec, offset), [], "the restored guest stays paused until resumed");
    const t1 = Date.now();
    await driver.setPaused(restored, false, newOpId());
    const resumeMs = Date.now() - t1;
    const after = await waitForTick(spec, offset, before.n + 1, 30_000);
    // The first tick comes when the ticker's `sleep 1` ends: up to a second of the guest's own time.
    t.diagnostic(`${kind}: restore to loaded+paused ${loadedMs} ms, resume ${resumeMs} ms, restore to running ${loadedMs + resumeMs} ms, to the next tick ${Date.now() - t0} ms; tick ${before.n} up=${before.up} -> ${after.n} up=${after.up}`);
    const first = ticks(spec, offset)[0];
    assert.ok(first !== undefined && first.n === before.n + 1, `the count continues after ${before.n}, got ${JSON.stringify(first)}`);
    assert.ok(first.up >= before.up && first.up < before.up + 5, `uptime continues from ${before.up}, got ${first.up}`);
    // The guest is reachable on its new tap, with its saved address.
    await ping(w);

    // A second save from the restored VMM works too (a fork of a fork).
    await driver.setPaused(restored, true, newOpId());
    const files2 = snapshotFiles(w, `s2-${kind}`);
    // Root's files in the owner's tree are refused: the helper writes only the owner's own.
    await assert.rejects(driver.saveState(restored, files2, newOpId()), /owned by uid 0/);
    await systemRunner.run(["chown", "-R", `${w.user.uid}:${w.user.gid}`, join(w.stateDir, "snapshots")]);
    assert.ok((await driver.saveState(restored, files2, newOpId())).bytes > 1_000_000);
    await driver.stop(restored, { timeoutMs: 1000, force: true }, newOpId());
    for (let i = 0; i < 50 && processesUnder(w.base).length > 0; i++) await sleep(100);
    assert.deepEqual(processesUnder(w.base), []);
    assert.equal(existsSync(helperVmFiles.vmDir(w.base, vmId)), false, "the helper removed the VM's run dir");
  } finally {
    await destroyWorld(w);
  }
  assert.deepEqual(processesUnder(w.base), []);
}

void test("qemu: pause, save, kill, restore from the files on a new tap, resume: the guest continues", { skip: vmmWorldSkip, timeout: 400_000 }, async (t) => {
  await scenario(t, "qemu");
});

void test("firecracker (via the API double): /snapshot/create, kill, /snapshot/load with a network override, resume: the guest continues", { skip: vmmWorldSkip, timeout: 400_000 }, async (t) => {
  await scenario(t, "firecracker");
});
