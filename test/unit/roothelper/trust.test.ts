import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, chownSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { readTrustedConfig, trustedBinary } from "../../../src/roothelper/fs/trust.js";
import { launchDetached } from "../../../src/system/launch.js";
import { systemRunner } from "../../../src/system/runner.js";
import { needsRoot } from "../../helpers/requirements.js";

const OWNER = 4242;
const HELPER = fileURLToPath(new URL("../../../src/bin/bangerd-root.js", import.meta.url));
const base = mkdtempSync("/tmp/bgt-trust-");
chmodSync(base, 0o755);
after(() => { rmSync(base, { recursive: true, force: true }); });

/** Start the real helper with these paths; it must refuse before it listens. */
function start(config: string, stateDir: string, socketDir = join(base, "sock")): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [HELPER, "--owner", String(OWNER), "--state-dir", stateDir, "--config", config, "--socket", join(socketDir, "h.sock")], { encoding: "utf8", timeout: 20_000 });
  return { code: r.status, stderr: r.stderr };
}

function ownerDir(p: string): string {
  mkdirSync(p, { recursive: true });
  chownSync(p, OWNER, OWNER);
  return p;
}

void test("config and VMM binaries must be root's alone, every directory above them included", { skip: needsRoot() }, () => {
  const good = join(base, "good.toml");
  writeFileSync(good, "[vmm]\nqemu_bin = \"/usr/bin/true\"\n", { mode: 0o644 });
  assert.match(readTrustedConfig(good) ?? "", /qemu_bin/);
  assert.equal(readTrustedConfig(join(base, "missing.toml")), undefined, "no file: defaults, nothing to trust");
  const owned = join(base, "owned.toml");
  writeFileSync(owned, "");
  chownSync(owned, OWNER, OWNER);
  assert.throws(() => readTrustedConfig(owned), /config .*owned\.toml: is owned by uid 4242; it must be owned by root/);
  const writable = join(base, "writable.toml");
  writeFileSync(writable, "");
  chmodSync(writable, 0o666);
  assert.throws(() => readTrustedConfig(writable), /writable\.toml: is writable by group or others/);
  const ownersDir = ownerDir(join(base, "home"));
  writeFileSync(join(ownersDir, "config.toml"), "", { mode: 0o644 });
  assert.throws(() => readTrustedConfig(join(ownersDir, "config.toml")), /directory .*home is owned by uid 4242; every directory above a trusted file must be root's/);
  // A symlink from a place the owner controls is judged at its target, and the target is what is used.
  symlinkSync(good, join(ownersDir, "link.toml"));
  assert.match(readTrustedConfig(join(ownersDir, "link.toml")) ?? "", /qemu_bin/);

  assert.equal(trustedBinary("vmm.qemu_bin", "/usr/bin/true")?.path, "/usr/bin/true");
  assert.equal(trustedBinary("vmm.firecracker_bin", "banger-no-such-binary"), undefined, "not installed: unavailable, not an error");
  const ownerBin = join(ownersDir, "qemu");
  copyFileSync("/usr/bin/true", ownerBin);
  chmodSync(ownerBin, 0o755);
  assert.throws(() => trustedBinary("vmm.qemu_bin", ownerBin), /vmm\.qemu_bin .*home\/qemu: directory .*home is owned by uid 4242/);
  const rootDirBin = join(base, "bin", "qemu");
  mkdirSync(join(base, "bin"), { mode: 0o755 });
  copyFileSync("/usr/bin/true", rootDirBin);
  chmodSync(rootDirBin, 0o775);
  assert.throws(() => trustedBinary("vmm.qemu_bin", rootDirBin), /bin\/qemu: is writable by group or others/);
  chmodSync(rootDirBin, 0o755);
  chownSync(rootDirBin, OWNER, OWNER);
  assert.throws(() => trustedBinary("vmm.qemu_bin", rootDirBin), /bin\/qemu: is owned by uid 4242; it must be owned by root/);
});

void test("a trusted binary is executed through the directory checked at start, re-checked at each exec", { skip: needsRoot() }, async () => {
  const dir = join(base, "exec", "bin");
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tool = join(dir, "tool");
  writeFileSync(tool, "#!/bin/sh\necho checked\n", { mode: 0o755 });
  const bin = trustedBinary("tools.tool_bin", tool);
  assert.ok(bin !== undefined);
  const run = async (): Promise<string> => (await systemRunner.run([bin.path], { execAt: bin.execAt() })).stdout.toString("utf8").trim();
  assert.equal(await run(), "checked");
  // Root replaces the directory behind the name: what runs is still the file in the directory that was checked.
  renameSync(dir, join(base, "exec", "bin.moved"));
  mkdirSync(dir, { mode: 0o755 });
  writeFileSync(tool, "#!/bin/sh\necho swapped\n", { mode: 0o755 });
  assert.equal(await run(), "checked");
  chmodSync(join(base, "exec", "bin.moved"), 0o777);
  assert.throws(() => bin.execAt(), /tools\.tool_bin .*exec\/bin\/tool: its directory is writable by group or others.*changed since the helper started/);
  chmodSync(join(base, "exec", "bin.moved"), 0o755);
  chownSync(join(base, "exec", "bin.moved", "tool"), OWNER, OWNER);
  assert.throws(() => bin.execAt(), /is owned by uid 4242; it must be owned by root \(changed since the helper started\)/);
  rmSync(join(base, "exec", "bin.moved", "tool"));
  assert.throws(() => bin.execAt(), /is gone since the helper started \(ENOENT\)/);

  // A binary (not a script) keeps its own name as comm, so VMM identity scans still see it, and the directory's descriptor is not left open in it.
  const qemuLike = join(dir, "qemu-system-x86_64");
  copyFileSync("/usr/bin/sleep", qemuLike);
  chmodSync(qemuLike, 0o755);
  const vmm = trustedBinary("vmm.qemu_bin", qemuLike);
  assert.ok(vmm !== undefined);
  const log = openSync("/dev/null", "w");
  const pid = launchDetached({ argv: [vmm.path, "30"], logFd: log, execAt: vmm.execAt() });
  closeSync(log);
  try {
    // posix_spawn returns once the exec has released the parent's memory, a moment before the kernel
    // renames the process: the name is checked once it has settled.
    const comm = (): string => readFileSync(`/proc/${pid}/comm`, "utf8").trim();
    for (let i = 0; i < 100 && comm() !== "qemu-system-x86"; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(comm(), "qemu-system-x86");
    assert.equal(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0], qemuLike);
    assert.equal(readlinkSync(`/proc/${pid}/exe`), qemuLike);
    assert.deepEqual(readdirSync(`/proc/${pid}/fd`).map((fd) => readlinkSync(`/proc/${pid}/fd/${fd}`)).filter((target) => target.endsWith("/exec/bin")), [], "the directory descriptor is not left open in the child");
  } finally {
    process.kill(pid, "SIGKILL");
  }
});

void test("bangerd-root refuses to start, naming the file and the rule", { skip: needsRoot() }, () => {
  const state = ownerDir(join(base, "s", "state"));
  const cfg = join(base, "ok.toml");
  writeFileSync(cfg, "", { mode: 0o644 });
  const ownerCfg = join(ownerDir(join(base, "s", "cfg")), "config.toml");
  writeFileSync(ownerCfg, "", { mode: 0o644 });
  chownSync(ownerCfg, OWNER, OWNER);
  let r = start(ownerCfg, state);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to start: config .*cfg\/config\.toml: (is owned by uid 4242|directory .* is owned by uid 4242)/);

  const ownerBin = join(base, "s", "cfg", "firecracker");
  copyFileSync("/usr/bin/true", ownerBin);
  chmodSync(ownerBin, 0o755);
  const binCfg = join(base, "bin.toml");
  writeFileSync(binCfg, `[vmm]\nfirecracker_bin = "${ownerBin}"\n`, { mode: 0o644 });
  r = start(binCfg, state);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to start: vmm\.firecracker_bin .*cfg\/firecracker: directory .* is owned by uid 4242/);

  symlinkSync(state, join(base, "s", "state-link"));
  r = start(cfg, join(base, "s", "state-link"));
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to start: state dir .*state-link: a component of the path is a symlink/);

  const foreign = join(base, "s", "foreign");
  mkdirSync(foreign);
  chownSync(foreign, 777, 777);
  r = start(cfg, foreign);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to start: state dir .*foreign: is owned by uid 777; a managed root must be owned by root or the owner/);

  // The VMMs' run dirs next to the socket must be root's: one the owner made first, or a symlink, is refused (and never chmodded).
  const squatted = join(base, "s", "sock-squatted");
  mkdirSync(squatted, { mode: 0o755 });
  ownerDir(join(squatted, "vm"));
  chmodSync(join(squatted, "vm"), 0o700);
  r = start(cfg, state, squatted);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to start: VMM run dirs .*sock-squatted\/vm: is owned by uid 4242; a managed root must be owned by root/);
  const linked = join(base, "s", "sock-linked");
  mkdirSync(linked, { mode: 0o755 });
  const elsewhere = join(base, "s", "elsewhere");
  mkdirSync(elsewhere, { mode: 0o755 });
  symlinkSync(elsewhere, join(linked, "vm"));
  r = start(cfg, state, linked);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /refusing to start: VMM run dirs .*sock-linked\/vm: a component of the path is a symlink/);
  assert.equal(statSync(elsewhere).mode & 0o777, 0o755, "the symlink's target was not chmodded");
});
