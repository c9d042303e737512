import assert from "node:assert/strict";
import { closeSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { RpcError } from "../../../src/rpc/errors.js";
import { named, openRegular } from "../../../src/roothelper/fs/beneath.js";
import { openManagedRoot, relativeTo } from "../../../src/roothelper/fs/managed-root.js";
import * as v from "../../../src/roothelper/validate.js";

function refused(fn: () => unknown, code = "bad_params"): void {
  assert.throws(fn, (e: unknown) => e instanceof RpcError && e.code === code);
}

const INJECTIONS = ["", "../etc", "tap-fc-12345678\n", "tap-fc-12345678 --help", "tap-fc-1234567; rm -rf /", "tap-fc-1234567$", "-o", "tap-fc-12345678/..", "täp-fc-12345678", "tap-fc-" + "a".repeat(64), "tap-fc-ABCDEF12"];

test("tap names: only tap-fc-<8 hex> and tap-pool-<n>", () => {
  assert.equal(v.tapName("tap", "tap-fc-0123abcd"), "tap-fc-0123abcd");
  assert.equal(v.tapName("tap", "tap-pool-7"), "tap-pool-7");
  for (const bad of [...INJECTIONS, "eth0", "tap-pool-", "tap-pool-12345"]) refused(() => v.tapName("tap", bad));
});

test("dm names and device paths", () => {
  v.dmName("dm_name", "fc-rootfs-0123abcd");
  v.dmDevicePath("dm_dev", "/dev/mapper/fc-rootfs-0123abcd");
  for (const bad of ["/dev/sda1", "/dev/mapper/../sda1", "/dev/mapper/fc-rootfs-x y", "/dev/mapper/fc-rootfs-0123abcd\n", "fc-rootfs-", "/dev/mapper/root"]) refused(() => v.dmDevicePath("dm_dev", bad));
  for (const bad of ["fc-rootfs-../x", "rootfs-0123abcd", "fc-rootfs-0123abcd -r"]) refused(() => v.dmName("dm_name", bad));
});

test("loop devices, iface names, vm ids", () => {
  v.loopDevice("loop", "/dev/loop12");
  for (const bad of ["/dev/loop", "/dev/sda", "/dev/loop1/../sda", "/dev/loop1 "]) refused(() => v.loopDevice("loop", bad));
  v.ifaceName("bridge", "banger0");
  for (const bad of ["", "a".repeat(16), "br 0", "br/0", "br:0", "-br", "br\n0"]) refused(() => v.ifaceName("bridge", bad));
  v.vmId("vm_id", "0123456789abcdef0123456789abcdef");
  refused(() => v.vmId("vm_id", "../../0123456789abcdef0123456789"));
});

test("IPv4 parsing is strict", () => {
  for (const ok of ["172.16.90.2", "0.0.0.0", "255.255.255.255"]) v.ipv4("guest_ip", ok);
  for (const bad of ["172.16.90", "172.16.90.256", "172.016.90.2", " 1.2.3.4", "1.2.3.4\n", "1.2.3.4/24", "::1", "1.2.3.4 -j ACCEPT"]) refused(() => v.ipv4("guest_ip", bad));
  v.ipv4Cidr("cidr", "172.16.90.0/24");
  for (const bad of ["172.16.90.0", "172.16.90.0/33", "172.16.90.0/4", "x/24", "1.2.3.4/24/1"]) refused(() => v.ipv4Cidr("cidr", bad));
  v.ipv4Port("server_addr", "127.0.0.1:10053");
  for (const bad of ["127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "localhost:53"]) refused(() => v.ipv4Port("server_addr", bad));
});

test("managed paths: inside the root, normalized, and what they name decided by descriptor (no symlink anywhere)", (t) => {
  const root = mkdtempSync(join(tmpdir(), "bgt-validate-"));
  t.after(() => { rmSync(root, { recursive: true, force: true }); });
  const state = join(root, "state");
  mkdirSync(join(state, "vms", "a"), { recursive: true });
  writeFileSync(join(state, "vms", "a", "root.ext4"), "");
  mkdirSync(join(root, "outside"));
  symlinkSync(join(root, "outside"), join(state, "vms", "link"));
  symlinkSync("/etc/shadow", join(state, "vms", "a", "evil.ext4"));
  const stateRoot = openManagedRoot("state dir", state, 0);
  const uid = process.getuid?.() ?? 0;
  const open = (p: string): void => { closeSync(openRegular(named("p", p, stateRoot), "read", { uid }).fd); };

  open(join(state, "vms", "a", "root.ext4"));
  assert.equal(relativeTo("p", join(state, "vms", "a", "new.ext4"), stateRoot), "vms/a/new.ext4");
  for (const bad of [
    "relative/path",
    join(state, "..", "outside", "x"),
    join(state, "vms", "..", "..", "outside"),
    state + "/vms/a/root.ext4\n",
    state + "/vms//a/root.ext4",
    state + "/vms/a/",
    join(root, "outside", "x"),
    state,
    state + "-evil/x",
  ]) refused(() => relativeTo("p", bad, stateRoot));
  refused(() => { open(join(state, "vms", "link", "x")); });
  refused(() => { open(join(state, "vms", "a", "evil.ext4")); });
  refused(() => { open(join(state, "vms", "a", "missing.ext4")); }, "not_found");
  closeSync(stateRoot.fd);
});
