import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { parseConfig } from "../../../src/config/load.js";
import { runChecks, type Probe } from "../../../src/doctor/checks.js";
import { which } from "../../../src/system/which.js";

function probe(present: readonly string[], devices: Record<string, number> = {}): Probe {
  return {
    which: (cmd) => (present.includes(cmd) ? `/usr/bin/${cmd}` : undefined),
    mode: (p) => devices[p],
    canReadWrite: () => true,
  };
}

const ALL = ["qemu-system-x86_64", "setpriv", "mkfs.ext4", "debugfs", "e2fsck", "resize2fs", "ip", "ssh", "mmdebstrap", "newuidmap", "newgidmap", "busybox", "dropbear", "lz4", "cpio", "dmsetup", "losetup", "resolvectl", "nft"];

test("a complete host passes; every missing piece comes with its fix", () => {
  const cfg = parseConfig("");
  const full = runChecks(cfg, probe(ALL, { "/dev/kvm": 0o600, "/dev/net/tun": 0o600 }));
  assert.equal(full.filter((c) => c.status === "missing").length, 0);

  const bare = runChecks(cfg, probe([], {}));
  const missing = bare.filter((c) => c.status === "missing").map((c) => c.name).sort();
  assert.deepEqual(missing, ["busybox", "e2fsprogs", "iproute2", "mmdebstrap", "nat", "qemu", "setpriv", "ssh", "tun"]);
  for (const c of bare.filter((x) => x.status !== "ok")) assert.ok(c.fix !== undefined && c.fix.length > 0, `${c.name} has a fix`);
  assert.match(bare.find((c) => c.name === "e2fsprogs")?.fix ?? "", /apt-get install -y e2fsprogs/);
  assert.match(bare.find((c) => c.name === "setpriv")?.fix ?? "", /apt-get install -y util-linux/);
});

test("qemu is only required when Firecracker+KVM cannot be used", () => {
  const cfg = parseConfig("");
  const withFc = runChecks(cfg, probe(ALL.filter((c) => c !== "qemu-system-x86_64").concat(["firecracker", "jailer"]), { "/dev/kvm": 0o600, "/dev/net/tun": 0o600 }));
  assert.equal(withFc.find((c) => c.name === "qemu")?.status, "warn");
  const noFc = runChecks(cfg, probe(ALL.filter((c) => c !== "qemu-system-x86_64"), { "/dev/kvm": 0o600, "/dev/net/tun": 0o600 }));
  assert.equal(noFc.find((c) => c.name === "qemu")?.status, "missing");
});

test("vmm.kind = firecracker makes a missing firecracker a failure", () => {
  const checks = runChecks(parseConfig(`[vmm]\nkind = "firecracker"`), probe(ALL, { "/dev/kvm": 0o600, "/dev/net/tun": 0o600 }));
  assert.equal(checks.find((c) => c.name === "firecracker")?.status, "missing");
});

test("banger doctor --json tells the truth about this machine", async () => {
  const bin = resolve(import.meta.dirname, "..", "..", "..", "src", "bin", "banger-main.js");
  const env = { ...process.env, BANGER_CONFIG: join("/nonexistent", "config.toml") };
  let stdout: string;
  try {
    ({ stdout } = await promisify(execFile)(process.execPath, [bin, "doctor", "--json"], { env }));
  } catch (e) {
    stdout = (e as { stdout: string }).stdout; // exit 1 when something required is missing
  }
  const doc = JSON.parse(stdout) as { ok: boolean; checks: { name: string; status: string; detail: string }[] };
  const byName = new Map(doc.checks.map((c) => [c.name, c]));
  const expectPresent = (name: string, cmds: string[]): void => {
    const present = cmds.every((c) => which(c) !== undefined);
    assert.equal(byName.get(name)?.status === "ok", present, `${name}: doctor says ${byName.get(name)?.status}, which() says ${present}`);
  };
  expectPresent("qemu", ["qemu-system-x86_64"]);
  expectPresent("e2fsprogs", ["mkfs.ext4", "debugfs", "e2fsck", "resize2fs"]);
  expectPresent("setpriv", ["setpriv"]);
  expectPresent("mmdebstrap", ["mmdebstrap"]);
  expectPresent("busybox", ["busybox"]);
  expectPresent("firecracker", ["firecracker"]);
  expectPresent("ssh", ["ssh"]);
  assert.equal(byName.get("kvm")?.status === "ok", existsSync("/dev/kvm"));
  assert.equal(doc.ok, doc.checks.every((c) => c.status !== "missing"));
});
