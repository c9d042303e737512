import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { launchDetached } from "../../../src/system/launch.js";
import { fcRequest, FirecrackerApiError, waitForApi } from "../../../src/vmm/firecracker/api-client.js";
import { buildBootSteps, directPaths } from "../../../src/vmm/firecracker/boot-steps.js";
import { sampleSpec } from "./fixtures.js";

export const DOUBLE = fileURLToPath(new URL("../../fc-double/firecracker-double.js", import.meta.url));

const dir = mkdtempSync("/tmp/bgt-vmm-api-");
const pids: number[] = [];
after(() => {
  for (const p of pids) {
    try { process.kill(p, "SIGKILL"); } catch { /* gone */ }
  }
  rmSync(dir, { recursive: true, force: true });
});

// Its own id: helper-validation tests (run in parallel) use fixtures.VM_ID and must not see this double as that VM's VMM.
const DOUBLE_ID = "fedcba9876543210fedcba9876543210";

async function startDouble(name: string, id = DOUBLE_ID): Promise<{ sock: string; pid: number }> {
  const sock = join(dir, `${name}.sock`);
  const pid = launchDetached({ argv: [DOUBLE, "--api-sock", sock, "--id", id], logFd: openSync(join(dir, `${name}.log`), "a"), pidFd: openSync(join(dir, `${name}.pid`), "wx") });
  pids.push(pid);
  await waitForApi(sock, 10_000);
  return { sock, pid };
}

async function fault(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof FirecrackerApiError && e.status === 400 && re.test(e.faultMessage));
}

/** A PUT whose body is sent chunked (no Content-Length): Firecracker sees no body. */
function chunkedPut(sock: string, path: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: sock, method: "PUT", path, headers: { "Transfer-Encoding": "chunked" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => { text += c.toString(); });
      res.on("end", () => { resolve({ status: res.statusCode ?? 0, text }); });
    });
    req.on("error", reject);
    req.write(body);
    req.end();
  });
}

void test("the double serves the API with firecracker's validation rules", async () => {
  const { sock } = await startDouble("rules");
  const root = await fcRequest(sock, "GET", "/");
  assert.deepEqual({ ...(root.body as object), vmm_version: "x" }, { id: DOUBLE_ID, state: "Not started", vmm_version: "x", app_name: "Firecracker" });
  await fault(fcRequest(sock, "PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: 128, bogus: true }), /bogus|Unrecognized/);
  await fault(fcRequest(sock, "PUT", "/machine-config", { vcpu_count: 1 }), /mem_size_mib/);
  await fault(fcRequest(sock, "PUT", "/drives/root-fs", { drive_id: "root-fs", is_root_device: true, path_on_host: "/dev/null" }), /alphanumeric/);
  await fault(fcRequest(sock, "PUT", "/drives/a", { drive_id: "b", is_root_device: true, path_on_host: "/dev/null" }), /does not match/);
  await fault(fcRequest(sock, "PUT", "/actions", { action_type: "SendCtrlAltDel" }), /before starting/);
  await fault(fcRequest(sock, "GET", "/nope"), /Invalid request method and\/or path/);
  await fault(fcRequest(sock, "PUT", "/boot-source", { kernel_image_path: join(dir, "missing") }), /kernel/);
  const chunked = await chunkedPut(sock, "/machine-config", JSON.stringify({ vcpu_count: 1, mem_size_mib: 128 }));
  assert.equal(chunked.status, 400);
  assert.match(chunked.text, /Empty PUT request/);
});

void test("the boot steps (up to InstanceStart) are accepted in order and reflected in /vm/config", async () => {
  const { sock } = await startDouble("steps");
  for (const f of ["vmlinux", "initrd.img", "root.ext4", "work.ext4"]) writeFileSync(join(dir, f), "");
  const spec = sampleSpec({ kernelPath: join(dir, "vmlinux"), initrdPath: join(dir, "initrd.img"), rootDisk: join(dir, "root.ext4"), workDisk: join(dir, "work.ext4"), vmmLog: join(dir, "fc.log"), metricsPath: join(dir, "metrics.json"), controlSocket: sock });
  const steps = buildBootSteps(spec, directPaths(spec));
  for (const s of steps.slice(0, -1)) {
    const r = await fcRequest(sock, s.method, s.path, s.body);
    assert.equal(r.status, 204, s.name);
  }
  const cfg = (await fcRequest(sock, "GET", "/vm/config")).body as Record<string, unknown>;
  assert.deepEqual(cfg["machine-config"], { vcpu_count: 2, mem_size_mib: 512, smt: false, track_dirty_pages: false, huge_pages: "None" });
  assert.deepEqual((cfg["drives"] as { drive_id: string }[]).map((d) => d.drive_id), ["rootfs", "work"]);
  assert.ok(existsSync(join(dir, "fc.log")), "logger step created the log file");
  await fault(fcRequest(sock, "PUT", "/drives/other", { drive_id: "other", is_root_device: true, path_on_host: join(dir, "work.ext4") }), /root block device already exists/);
  await fault(fcRequest(sock, "PUT", "/metrics", { metrics_path: join(dir, "m2") }), /Reinitialization/);
});

function exitCode(argv: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const c = spawn(DOUBLE, argv, { stdio: "ignore" });
    c.on("exit", (code) => { resolve(code); });
  });
}

void test("the double rejects firecracker-invalid flags and an existing socket like firecracker", async () => {
  assert.equal(await exitCode(["--api-sock", join(dir, "a.sock"), "--api-sock", join(dir, "b.sock")]), 153);
  assert.equal(await exitCode([`--api-sock=${join(dir, "a.sock")}`]), 153);
  assert.equal(await exitCode(["--api-sock", join(dir, "a.sock"), "--id", "bad_id!"]), 153);
  writeFileSync(join(dir, "taken.sock"), "");
  assert.equal(await exitCode(["--api-sock", join(dir, "taken.sock")]), 1);
});

void test("the double's snapshot endpoints follow firecracker's rules: create only post-boot, load only in a fresh process", async () => {
  const { sock } = await startDouble("snap");
  const create = { snapshot_type: "Full", snapshot_path: join(dir, "vmstate"), mem_file_path: join(dir, "mem") };
  await fault(fcRequest(sock, "PUT", "/snapshot/create", create), /before starting/);
  const load = { snapshot_path: join(dir, "vmstate"), mem_backend: { backend_type: "File", backend_path: join(dir, "mem") } };
  await fault(fcRequest(sock, "PUT", "/snapshot/load", { ...load, mem_file_path: join(dir, "mem") }), /exactly one of mem_backend or mem_file_path/);
  await fault(fcRequest(sock, "PUT", "/snapshot/load", { snapshot_path: join(dir, "vmstate") }), /exactly one/);
  await fault(fcRequest(sock, "PUT", "/snapshot/load", { ...load, bogus: 1 }), /bogus|Unrecognized/);
  await fault(fcRequest(sock, "PUT", "/snapshot/load", { ...load, network_overrides: [{ iface_id: "net0" }] }), /host_dev_name/);
  await fault(fcRequest(sock, "PUT", "/snapshot/load", load), /cannot read the memory file/);
  await fault(fcRequest(sock, "PUT", "/snapshot/bogus", load), /Invalid request method and\/or path/);
  // Logger and metrics are allowed before a load; any boot resource is not.
  assert.equal((await fcRequest(sock, "PUT", "/logger", { log_path: join(dir, "snap-fc.log") })).status, 204);
  assert.equal((await fcRequest(sock, "PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: 128 })).status, 204);
  await fault(fcRequest(sock, "PUT", "/snapshot/load", load), /not allowed after configuring boot-specific resources/);
  assert.equal(((await fcRequest(sock, "GET", "/")).body as { state: string }).state, "Not started", "a refused load leaves the process as it was");
});
