import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { writeExt4Files } from "../../../src/daemon/storage/ext4.js";
import { makeExt4 } from "../../../src/image/ext4.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { TINY_CMDLINE, tinyImage, tinyImageSkip } from "../../helpers/tiny-image.js";

/*
 * Acceptance for the tiny image: boot it with plain qemu (TCG, no daemon)
 * and reach it over ssh through a tap inside a private network namespace,
 * with the files VM create would inject (network, fstab, hostname, dropbear
 * host key, authorized_keys on the work disk). Then stop it the way the VMM
 * drivers do (ctrl-alt-del) and check it shuts down in order.
 */

const QEMU = "qemu-system-x86_64";
const MAC = "52:54:00:b9:a1:02";
const GUEST_IP = "172.31.250.2";
const HOST_IP = "172.31.250.1";

interface Vm {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
}

function startQemu(argv: readonly string[]): Vm {
  const [file, ...args] = argv;
  const child = spawn(file ?? QEMU, args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => { stderr += c.toString(); });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => {
    if (code !== 0 && stderr !== "") process.stderr.write(`qemu: ${stderr}\n`);
    resolve(code);
  }));
  return { child, exited };
}

function qemuArgv(kernel: string, initrd: string, rootDisk: string, extra: readonly string[]): string[] {
  // ACPI stays ON: Debian's cloud kernel has virtio_mmio as a module without
  // CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES, so it finds microvm's devices only
  // through ACPI, never through virtio_mmio.device= (acpi=off would hang).
  return [
    QEMU, "-M", "microvm,x-option-roms=off,rtc=on,isa-serial=on", "-accel", "tcg", "-cpu", "max", "-m", "256",
    "-nodefaults", "-no-user-config", "-nographic", "-no-reboot", "-device", "i8042",
    "-kernel", kernel, "-initrd", initrd, "-append", TINY_CMDLINE,
    "-drive", `id=root,file=${rootDisk},format=raw,if=none`, "-device", "virtio-blk-device,drive=root",
    ...extra,
  ];
}

async function waitFor(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  while (Date.now() - start < timeoutMs) {
    if (await probe()) return Date.now() - start;
    await sleep(500);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function consoleHas(path: string, text: string): Promise<boolean> {
  return (await readFile(path, "utf8").catch(() => "")).includes(text);
}

void test("tiny image (bzImage) boots under qemu TCG and is ssh-able with injected config, then stops on ctrl-alt-del", {
  skip: requires(needsRoot(), tinyImageSkip(), needsCommands(QEMU, "ssh", "ssh-keygen", "dropbearconvert", "debugfs")),
  timeout: 240_000,
}, async (t) => {
  const img = await tinyImage();
  const dir = await mkdtemp("/tmp/bgt-img-boot-");
  const ns = await createNetNs("bgt-img");
  const vms: Vm[] = [];
  t.after(async () => {
    for (const v of vms) if (v.child.exitCode === null) v.child.kill("SIGKILL");
    await ns.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  const rootDisk = join(dir, "root.ext4");
  await copyFile(img.rootfs, rootDisk);
  await systemRunner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bgt-img", "-f", join(dir, "id")]);
  await systemRunner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "host", "-f", join(dir, "hostkey")]);
  await systemRunner.run(["dropbearconvert", "openssh", "dropbear", join(dir, "hostkey"), join(dir, "hostkey.db")]);
  const hostPub = (await readFile(join(dir, "hostkey.pub"), "utf8")).trim().split(" ").slice(0, 2).join(" ");
  await writeFile(join(dir, "known_hosts"), `${GUEST_IP} ${hostPub}\n`);

  await writeExt4Files(systemRunner, rootDisk, [
    { path: "/etc/hostname", data: "bgtimg\n", mode: 0o644 },
    { path: "/etc/hosts", data: "127.0.0.1 localhost\n127.0.1.1 bgtimg\n", mode: 0o644 },
    { path: "/etc/fstab", data: "/dev/vdb /root ext4 defaults 0 2\ntmpfs /run tmpfs defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n", mode: 0o644 },
    { path: "/etc/banger/network", data: `MAC=${MAC.toUpperCase()}\nIP=${GUEST_IP}\nPREFIX=24\nGATEWAY=${HOST_IP}\nDNS=${HOST_IP}\n`, mode: 0o644 },
    { path: "/etc/dropbear/dropbear_ed25519_host_key", data: await readFile(join(dir, "hostkey.db")), mode: 0o600 },
  ]);
  const workTree = join(dir, "work");
  await mkdir(join(workTree, ".ssh"), { recursive: true, mode: 0o700 });
  await writeFile(join(workTree, ".ssh", "authorized_keys"), await readFile(join(dir, "id.pub")), { mode: 0o600 });
  const workDisk = join(dir, "work.ext4");
  await makeExt4(systemRunner, workTree, workDisk, 32 * 1024 * 1024, { label: "work" });

  await ns.run(["ip", "tuntap", "add", "dev", "tap0", "mode", "tap"]);
  await ns.run(["ip", "addr", "add", `${HOST_IP}/24`, "dev", "tap0"]);
  await ns.run(["ip", "link", "set", "tap0", "up"]);

  const consoleLog = join(dir, "console.log");
  const monitor = join(dir, "mon.sock");
  const started = Date.now();
  const vm = startQemu(ns.exec(qemuArgv(img.kernel, img.initrd, rootDisk, [
    "-drive", `id=work,file=${workDisk},format=raw,if=none`, "-device", "virtio-blk-device,drive=work",
    "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-device", `virtio-net-device,netdev=n0,mac=${MAC}`,
    "-serial", `file:${consoleLog}`, "-monitor", `unix:${monitor},server=on,wait=off`,
  ])));
  vms.push(vm);

  const sshArgv = (cmd: string): string[] => ns.exec([
    "ssh", "-i", join(dir, "id"), "-F", "/dev/null", "-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`, "-o", "StrictHostKeyChecking=yes",
    "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", `root@${GUEST_IP}`, cmd,
  ]);
  let lastError = "";
  await waitFor("ssh into the guest", 150_000, async () => {
    if (vm.child.exitCode !== null) throw new Error(`qemu exited early; console:\n${await readFile(consoleLog, "utf8").catch(() => "")}`);
    try {
      await systemRunner.run(sshArgv("true"), { timeoutMs: 15_000 });
      return true;
    } catch (e) {
      lastError = e instanceof Error ? e.message : String(e);
      return false;
    }
  }).catch(async (e: unknown) => {
    throw new Error(`${e instanceof Error ? e.message : String(e)}; last ssh error: ${lastError}\nconsole:\n${await readFile(consoleLog, "utf8").catch(() => "")}`);
  });
  t.diagnostic(`boot to ssh: ${Date.now() - started} ms`);

  const out = await runText(systemRunner, sshArgv("hostname; uname -r; id -u; grep ' /root ' /proc/mounts | cut -d' ' -f1; cat /etc/resolv.conf"), { timeoutMs: 20_000 });
  const [hostname, release, uid, rootMount, ...resolv] = out.split("\n");
  assert.equal(hostname, "bgtimg");
  assert.equal(release, img.kernelVersion);
  assert.equal(uid, "0");
  assert.equal(rootMount, "/dev/vdb");
  assert.ok(resolv.includes(`nameserver ${HOST_IP}`), `resolv.conf: ${resolv.join(" | ")}`);
  // Key-only: a password attempt must not even be offered.
  await assert.rejects(systemRunner.run(ns.exec(["ssh", "-F", "/dev/null", "-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`, "-o", "BatchMode=yes",
    "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive", `root@${GUEST_IP}`, "true"]), { timeoutMs: 20_000 }));

  const stopAt = Date.now();
  await new Promise<void>((resolve, reject) => {
    const sock = connect(monitor, () => { sock.end("sendkey ctrl-alt-delete\n"); });
    sock.on("error", reject);
    sock.on("close", () => { resolve(); });
    sock.resume();
  });
  // Cancel the timer once qemu exits, or it would hold the test process open for a minute.
  const timer = new AbortController();
  const code = await Promise.race([vm.exited, sleep(60_000, "timeout" as const, { signal: timer.signal })]);
  timer.abort();
  assert.notEqual(code, "timeout", "qemu did not exit within 60 s of ctrl-alt-del");
  t.diagnostic(`ctrl-alt-del to exit: ${Date.now() - stopAt} ms`);
  const log = await readFile(consoleLog, "utf8");
  assert.match(log, /banger: guest shutting down/);
  assert.match(log, /reboot: Restarting system/);
});

void test("extracted ELF vmlinux boots the tiny image under qemu microvm to a shell prompt", {
  skip: requires(needsRoot(), tinyImageSkip(), needsCommands(QEMU)),
  timeout: 180_000,
}, async (t) => {
  const img = await tinyImage();
  const dir = await mkdtemp("/tmp/bgt-img-vmlinux-");
  const vms: Vm[] = [];
  t.after(async () => {
    for (const v of vms) if (v.child.exitCode === null) v.child.kill("SIGKILL");
    await rm(dir, { recursive: true, force: true });
  });
  const consoleLog = join(dir, "console.log");
  const started = Date.now();
  // snapshot=on: writes go to a temp overlay, so the shared cached rootfs stays pristine.
  const vm = startQemu(qemuArgv(img.vmlinux, img.initrd, `${img.rootfs},snapshot=on`, ["-nic", "none", "-serial", `file:${consoleLog}`]));
  vms.push(vm);
  await waitFor("the tiny guest's shell prompt", 150_000, async () => {
    if (vm.child.exitCode !== null) throw new Error(`qemu exited early; console:\n${await readFile(consoleLog, "utf8").catch(() => "")}`);
    return consoleHas(consoleLog, "built-in shell (ash)");
  });
  t.diagnostic(`vmlinux boot to prompt: ${Date.now() - started} ms`);
  const log = await readFile(consoleLog, "utf8");
  assert.match(log, /banger: tiny guest ready/);
  assert.match(log, /banger: dropbear started/);
});
