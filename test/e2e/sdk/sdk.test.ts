import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { Banger, BangerError, ExecFailedError, type ProgressEvent } from "../../../src/sdk/index.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startStack } from "../../helpers/stack.js";
import { tinyStackConfig } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft"));

/** Pids whose command line names `vmId` (the VMM's paths carry it). */
function processesOf(vmId: string): string[] {
  return readdirSync("/proc").filter((d) => /^[0-9]+$/.test(d)).filter((d) => {
    try {
      return readFileSync(`/proc/${d}/cmdline`, "utf8").includes(vmId);
    } catch {
      return false;
    }
  });
}

/**
 * The SDK against real guests: helper as root, daemon as the test user in a netns, the SDK in
 * this process on the daemon's socket (root may use it, as the CLI run by root may).
 */
test("SDK: build with progress, typed error on a bad image, create, streamed slow exec, exit codes and signals, cancellation, files round trip, await using cleanup", { skip: SKIP, timeout: 900_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-sdk");
  cleanup.push("netns", () => ns.destroy());
  const stack = await startStack({ user, netns: ns, config: tinyStackConfig("qemu") });
  cleanup.push("stack", async () => {
    await stack.cli(["vm", "rm", "--force", "sdk1"]).catch(() => undefined);
    await stack.stop();
  });
  const banger = await Banger.connect({ socketPath: stack.env["BANGER_SOCKET"] ?? "" });

  const buildSteps: ProgressEvent[] = [];
  const image = await banger.images.build({ name: "tiny", from: "busybox", onProgress: (e) => buildSteps.push(e) });
  assert.equal(image.name, "tiny");
  assert.equal(buildSteps.at(-1)?.state, "succeeded");
  assert.ok(buildSteps.some((e) => e.step !== undefined), "a running step was reported");

  await assert.rejects(banger.vms.create({ image: "no-such-image", name: "sdk0" }), (e: unknown) => {
    assert.ok(e instanceof BangerError, String(e));
    assert.equal(e.code, "not_found");
    assert.match(e.message, /no-such-image/);
    assert.match(e.opId ?? "", /^op-/);
    return true;
  });
  assert.deepEqual((await banger.vms.list()).map((v) => v.name), [], "a refused create leaves no VM");

  let vmId = "";
  {
    const createSteps: string[] = [];
    await using vm = await banger.vms.create({ image: "tiny", name: "sdk1", onProgress: (e) => { if (e.step !== undefined) createSteps.push(e.step.name); } });
    assert.equal(vm.state, "running");
    vmId = vm.id;
    assert.notDeepEqual(processesOf(vmId), [], "its VMM names the VM's id (so the check at the end can see it)");
    assert.ok(createSteps.length > 0, "create reported its steps");

    // A slow producer: each line arrives while the command still runs.
    const arrivals: number[] = [];
    const p = await vm.exec(["sh", "-c", "for i in 1 2 3; do echo line$i; sleep 1; done; echo done >&2"], { onStdout: () => arrivals.push(Date.now()) });
    const errText: string[] = [];
    for await (const chunk of p.stderr) errText.push(String(chunk));
    const status = await p.exit;
    const ended = Date.now();
    assert.deepEqual(status, { code: 0, signal: null });
    assert.equal(errText.join(""), "done\n");
    assert.ok(arrivals.length >= 2, `output came in pieces (${arrivals.length})`);
    assert.ok(ended - (arrivals[0] ?? ended) >= 1500, `the first line arrived ${ended - (arrivals[0] ?? ended)} ms before the end`);

    // Async iteration of stdout, env, cwd, stdin.
    const it = await vm.exec(["sh", "-c", "echo $GREETING; pwd; wc -c"], { env: { GREETING: "hi" }, cwd: "/tmp", stdin: "four" });
    let out = "";
    for await (const chunk of it.stdout) out += String(chunk);
    assert.equal(out.replace(/ +/g, ""), "hi\n/tmp\n4\n");
    assert.equal(await vm.execText(["echo", "a b", "$HOME"]), "a b $HOME\n", "argv words pass as is");

    // Exit codes and signals.
    await assert.rejects(vm.execText(["sh", "-c", "echo oops >&2; exit 3"]), (e: unknown) => e instanceof ExecFailedError && e.result.code === 3 && /exited 3: oops/.test(e.message));
    assert.deepEqual(await (await vm.exec(["sh", "-c", "kill -KILL $$"])).exit, { code: null, signal: "KILL" });
    const sleeper = await vm.exec(["sleep", "300"]);
    await sleep(500);
    sleeper.kill("INT");
    assert.deepEqual(await sleeper.exit, { code: null, signal: "INT" });

    // Cancellation: the abort ends the remote command, and the caller sees the abort.
    const ac = new AbortController();
    const cancelled = await vm.exec(["sleep", "313"], { signal: ac.signal });
    const running = async (): Promise<boolean> => (await vm.execText(["ps"])).includes("sleep 313");
    for (let i = 0; i < 50 && !(await running()); i++) await sleep(200);
    assert.ok(await running(), "the remote sleep started");
    ac.abort();
    await assert.rejects(cancelled.exit, (e: unknown) => e instanceof Error && e.name === "AbortError");
    let still = true;
    for (let i = 0; i < 50 && still; i++) {
      still = await running();
      if (still) await sleep(200);
    }
    assert.equal(still, false, "the abort ended the remote sleep");
    await assert.rejects((await vm.exec(["sleep", "60"], { timeoutMs: 1_000 })).exit, (e: unknown) => e instanceof BangerError && e.code === "timeout");

    // Files: a binary round trip, a listing, a removal, and the error for a missing file.
    const blob = randomBytes(3 * 1024 * 1024 + 17);
    await vm.files.write("/root/blob.bin", blob, { mode: 0o640 });
    const back: Buffer[] = [];
    for await (const c of vm.files.read("/root/blob.bin")) back.push(c as Buffer);
    assert.ok(Buffer.concat(back).equals(blob), "the bytes came back unchanged");
    await vm.files.write("/root/note.txt", "hello\n");
    assert.equal(await vm.files.readText("/root/note.txt"), "hello\n");
    const entries = await vm.files.list("/root");
    const entry = entries.find((e) => e.name === "blob.bin");
    assert.equal(entry?.size, blob.length);
    assert.equal(entry?.mode, 0o640);
    await vm.files.remove("/root/blob.bin");
    assert.ok(!(await vm.files.list("/root")).some((e) => e.name === "blob.bin"));
    await assert.rejects(vm.files.readText("/root/blob.bin"), (e: unknown) => e instanceof BangerError && e.code === "not_found");
    await assert.rejects(vm.files.remove("/root/blob.bin"), (e: unknown) => e instanceof BangerError && e.code === "not_found");
  }
  // The scope's end deleted the VM: no record, no VMM process left.
  assert.deepEqual((await banger.vms.list()).map((v) => v.name), []);
  await assert.rejects(banger.vms.get("sdk1"), (e: unknown) => e instanceof BangerError && e.code === "not_found");
  assert.ok(vmId !== "");
  assert.deepEqual(processesOf(vmId), [], "no process of the deleted VM is left");
});
