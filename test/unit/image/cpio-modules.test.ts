import assert from "node:assert/strict";
import { test } from "node:test";
import { gunzipSync } from "node:zlib";
import { readCpio, writeCpio } from "../../../src/image/cpio.js";
import { findKernel } from "../../../src/image/host-kernel.js";
import { buildInitrd, initScript } from "../../../src/image/initrd.js";
import { GUEST_MODULES, resolveModules } from "../../../src/image/modules.js";
import { systemRunner } from "../../../src/system/runner.js";
import { needsCommands, requires } from "../../helpers/requirements.js";

void test("cpio newc round-trips files, dirs, symlinks and device nodes, all owned by root", () => {
  const archive = writeCpio([
    { kind: "dir", path: "bin" },
    { kind: "file", path: "bin/x", data: Buffer.from("abc"), mode: 0o755 },
    { kind: "symlink", path: "bin/sh", target: "x" },
    { kind: "dir", path: "dev" },
    { kind: "chardev", path: "dev/console", major: 5, minor: 1 },
  ]);
  const recs = readCpio(archive);
  assert.deepEqual(recs.map((r) => r.name), ["bin", "bin/x", "bin/sh", "dev", "dev/console"]);
  assert.equal(recs[1]?.data.toString(), "abc");
  assert.equal(recs[1]?.mode, 0o100755);
  assert.equal(recs[2]?.data.toString(), "x");
  assert.deepEqual([recs[4]?.mode, recs[4]?.rdevMajor, recs[4]?.rdevMinor], [0o020600, 5, 1]);
  assert.ok(recs.every((r) => r.uid === 0 && r.gid === 0));
  assert.equal(archive.length % 4, 0);
});

void test("cpio refuses traversal, empty components, duplicates and orphans", () => {
  for (const path of ["../etc/passwd", "a/../../b", "a//b", "./x", ""]) {
    assert.throws(() => writeCpio([{ kind: "file", path, data: Buffer.alloc(0) }]), /invalid cpio path/, path);
  }
  assert.throws(() => writeCpio([{ kind: "dir", path: "a" }, { kind: "dir", path: "a" }]), /duplicate/);
  assert.throws(() => writeCpio([{ kind: "file", path: "nodir/x", data: Buffer.alloc(0) }]), /before its directory/);
  assert.throws(() => readCpio(Buffer.from("garbage garbage garbage")), /cpio/);
});

const DEP = `kernel/drivers/virtio/virtio_mmio.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko
kernel/net/core/failover.ko:
kernel/net/vmw_vsock/vsock.ko:
kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko: kernel/net/vmw_vsock/vsock.ko
kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz: kernel/net/vmw_vsock/vmw_vsock_virtio_transport_common.ko kernel/net/vmw_vsock/vsock.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/char/virtio_console.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`;

void test("modules are resolved from modules.dep with every dependency loaded first", () => {
  const mods = resolveModules(DEP, new Set(), GUEST_MODULES);
  const names = mods.map((m) => m.name);
  assert.deepEqual(new Set(names), new Set(["virtio", "virtio_ring", "virtio_mmio", "virtio_blk", "failover", "net_failover", "virtio_net", "vsock", "vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport", "virtio_console"]));
  const before = (a: string, b: string): void => { assert.ok(names.indexOf(a) < names.indexOf(b), `${a} before ${b}: ${names.join(",")}`); };
  before("virtio", "virtio_mmio");
  before("failover", "net_failover");
  before("net_failover", "virtio_net");
  before("vmw_vsock_virtio_transport_common", "vmw_vsock_virtio_transport");
  assert.equal(mods.find((m) => m.name === "vmw_vsock_virtio_transport")?.relPath, "kernel/net/vmw_vsock/vmw_vsock_virtio_transport.ko.xz");
  // Built-in drivers need no file; unknown ones are an error naming them.
  assert.deepEqual(resolveModules("", new Set(["virtio_blk"]), ["virtio_blk"]), []);
  assert.throws(() => resolveModules(DEP, new Set(), ["virtio_blk", "nosuchmod"]), /nosuchmod/);
});

void test("the init script hands virtio_mmio.device= entries to insmod and loads modules in order", () => {
  const script = initScript(resolveModules(DEP, new Set(), GUEST_MODULES));
  assert.match(script, /virtio_mmio\.device=\*\) mmio="\$mmio device=\$\{arg#virtio_mmio\.device=\}"/);
  assert.match(script, /insmod \/lib\/modules\/virtio_mmio\.ko \$mmio/);
  assert.ok(script.indexOf("insmod /lib/modules/virtio.ko") < script.indexOf("insmod /lib/modules/virtio_mmio.ko"));
  assert.match(script, /exec switch_root \/newroot "\$init"/);
});

let hostKernel: Awaited<ReturnType<typeof findKernel>> | undefined;
try { hostKernel = await findKernel("/"); } catch { hostKernel = undefined; }

void test("initrd from the host kernel contains busybox, /dev/console, /init and all guest modules", {
  skip: requires(hostKernel === undefined ? "needs linux-image-cloud-amd64" : false, needsCommands("busybox")),
}, async () => {
  const initrd = await buildInitrd(systemRunner, { busybox: "/bin/busybox", modulesDir: hostKernel?.modulesDir ?? "" });
  const recs = readCpio(gunzipSync(initrd));
  const byName = new Map(recs.map((r) => [r.name, r]));
  assert.equal(byName.get("init")?.mode, 0o100755);
  assert.equal(byName.get("dev/console")?.rdevMajor, 5);
  for (const m of ["virtio_mmio", "virtio_blk", "virtio_net", "vsock", "vmw_vsock_virtio_transport", "virtio_console", "virtio", "virtio_ring", "failover", "net_failover", "vmw_vsock_virtio_transport_common"]) {
    const rec = byName.get(`lib/modules/${m}.ko`);
    assert.ok(rec !== undefined, `missing ${m}`);
    assert.equal(rec.data.readUInt32BE(0), 0x7f454c46, `${m} is not an ELF .ko`);
  }
  assert.ok(recs.every((r) => r.uid === 0 && r.gid === 0));
});
