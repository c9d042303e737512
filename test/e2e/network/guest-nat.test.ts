import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { DnsServer } from "../../../src/daemon/dns/server.js";
import { allocateLease } from "../../../src/daemon/network/lease.js";
import { createWorkDisk } from "../../../src/daemon/storage/work-disk.js";
import { writeExt4Files } from "../../../src/daemon/storage/ext4.js";
import { rootDiskEdits } from "../../../src/daemon/vm/guest-files.js";
import { bridgeIp } from "../../../src/model/ipv4.js";
import { privCreateTap, privEnsureBridge, privEnsureNat } from "../../../src/rpc/priv/network.js";
import { openDatabase } from "../../../src/state/database.js";
import { silentLogger } from "../../../src/system/log.js";
import { systemRunner } from "../../../src/system/runner.js";
import { buildQemuArgv } from "../../../src/vmm/qemu/argv.js";
import { startHelperInNetns } from "../../helpers/helper-in-netns.js";
import { type NetNs, createNetNs, linkNamespaces, startEchoAddressServer } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { resolveA } from "../../helpers/dns-query.js";
import { TINY_CMDLINE, tinyImage, tinyImageSkip } from "../../helpers/tiny-image.js";

/*
 * A real guest (tiny busybox image, qemu -M microvm under TCG) on banger's
 * bridge inside a "host" namespace, with the real root helper doing bridge,
 * tap and NAT there; an "internet" namespace behind the host has no route to
 * the guest network. The guest's network config is the one VM create injects
 * (guest-files.ts) from a lease allocated by the real allocator.
 */

const CIDR = "172.16.93.0/24";
const OWNER = { uid: 4242, gid: 4242 };

function run(ns: NetNs, args: string[], timeoutMs = 20_000): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", ns.name, ...args], { stdio: ["ignore", "pipe", "pipe"], timeout: timeoutMs });
    let out = "";
    p.stdout.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.stderr.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.on("close", (code) => { resolve({ code, out: out.trim() }); });
  });
}


void test("booted guest reaches the 'internet' namespace through NAT and the host reaches it by NAME.vm", { skip: requires(needsRoot(), needsCommands("qemu-system-x86_64", "ip", "nft", "ssh", "ssh-keygen", "mkfs.ext4", "debugfs"), tinyImageSkip()), timeout: 180_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-net-e2e-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const img = await tinyImage();
  const root = join(dir, "root.ext4");
  const work = join(dir, "work.ext4");
  const key = join(dir, "id_ed25519");
  await systemRunner.run(["cp", "--reflink=auto", "--sparse=always", img.rootfs, root]);
  await systemRunner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bgt-net", "-f", key]);
  const pub = readFileSync(`${key}.pub`, "utf8").trim();
  await createWorkDisk(systemRunner, work, 1, pub);

  // The lease comes from the real allocator, the guest files from the real renderer.
  const db = openDatabase(join(dir, "banger.db"));
  t.after(() => { db.close(); });
  const vmId = "c0ffee00" + "0123456789abcdef01234567";
  db.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('tiny', 'test', ?, ?, 1, 'now')").run(img.kernel, img.rootfs);
  db.prepare("INSERT INTO vms (id, name, image, vcpus, memory_mib, disk_gib, state, vmm, created_at, updated_at) VALUES (?, 'natguest', 'tiny', 1, 256, 1, 'creating', 'qemu', 'now', 'now')").run(vmId);
  const row = allocateLease(db, vmId, { cidr: CIDR });
  const lease = { ...row, prefix: 24, gateway: bridgeIp(CIDR), nameservers: ["198.51.100.2"] };
  const edits = rootDiskEdits({ name: "natguest", flavor: "busybox", lease, hostKey: { private: Buffer.alloc(0), public: "" } });
  // dropbear makes its own host key (-R) when none is there; this test pins nothing.
  const files = edits.files.filter((f) => !f.path.startsWith("/etc/dropbear/")).map((f) => ({ path: f.path, data: f.content, mode: f.mode, uid: f.uid, gid: f.gid }));
  await writeExt4Files(systemRunner, root, files, edits.dirs);

  const host = await createNetNs("bgt-net-h");
  t.after(() => host.destroy());
  const inet = await createNetNs("bgt-net-i");
  t.after(() => inet.destroy());
  const helper = await startHelperInNetns(host, OWNER, `[network]\nbridge = "bgtbr0"\ncidr = "${CIDR}"\n`);
  t.after(() => helper.stop());
  await helper.call(privEnsureBridge, {});
  await helper.call(privCreateTap, { tap_name: row.tap });
  await helper.call(privEnsureNat, { guest_ip: row.ip, tap: row.tap, enable: true });
  await linkNamespaces(host, inet, "198.51.100.1/24", "198.51.100.2/24");
  await startEchoAddressServer(inet, t, 120_000);

  const consoleLog = join(dir, "console.log");
  const argv = buildQemuArgv("qemu-system-x86_64", {
    vmId, name: "natguest", vcpus: 1, memoryMib: 256, kernelPath: img.kernel, initrdPath: img.initrd, cmdline: TINY_CMDLINE,
    rootDisk: root, workDisk: work, tap: row.tap, mac: row.mac, controlSocket: join(dir, "qmp.sock"), pidFile: join(dir, "qemu.pid"),
    consoleLog, vmmLog: join(dir, "qemu.log"), accel: "tcg",
  }, OWNER);
  // The agent channel's FIFOs, which the helper makes beside the control socket for a real launch.
  for (const end of ["in", "out"]) await systemRunner.run(["mkfifo", "-m", "600", join(dir, `agent.${end}`)]);
  const t0 = Date.now();
  const qemu = spawn("ip", ["netns", "exec", host.name, ...argv], { stdio: "ignore" });
  t.after(() => { qemu.kill("SIGKILL"); });

  const dns = new DnsServer(silentLogger);
  t.after(async () => { await dns.close(); });
  const dnsAddr = await dns.start("127.0.0.1:0");
  dns.setRecords({ natguest: row.ip });
  const ip = (await resolveA(dnsAddr, "natguest.vm")).ips[0];
  assert.equal(ip, row.ip);

  const ssh = (cmd: string): Promise<{ code: number | null; out: string }> => run(host, ["ssh", "-i", key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3", "-o", "LogLevel=ERROR", `root@${ip ?? ""}`, cmd]);
  let ready = false;
  while (!ready && Date.now() - t0 < 120_000) {
    ready = (await ssh("true")).code === 0;
    if (!ready) await new Promise((r) => setTimeout(r, 1000));
  }
  const console = (): string => { try { return readFileSync(consoleLog, "utf8").slice(-3000); } catch { return "(no console log)"; } };
  assert.ok(ready, `guest never became ssh-ready at natguest.vm (${ip ?? "?"}):\n${console()}`);
  t.diagnostic(`guest ssh-ready via NAME.vm after ${Date.now() - t0} ms (TCG)`);

  const resolv = await ssh("cat /etc/resolv.conf");
  assert.match(resolv.out, /nameserver 198\.51\.100\.2/, "guest got the upstream resolver from the injected config");
  const through = await ssh("nc 198.51.100.2 8080 </dev/null");
  assert.equal(through.code, 0, through.out);
  assert.equal(through.out.replace(/^::ffff:/, ""), "198.51.100.1", "the internet sees the host's address: the guest is masqueraded");

  await helper.call(privEnsureNat, { guest_ip: row.ip, tap: row.tap, enable: false });
  const cut = await ssh("timeout 5 nc 198.51.100.2 8080 </dev/null || echo BLOCKED");
  assert.doesNotMatch(cut.out, /198\.51\.100\.1/, "without NAT the guest no longer gets through");
});
