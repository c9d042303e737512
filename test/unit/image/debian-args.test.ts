import assert from "node:assert/strict";
import { test } from "node:test";
import { DEBIAN_PACKAGES, mmdebstrapArgv, overlayTarArgv } from "../../../src/image/debian.js";
import { asTreeRoot } from "../../../src/image/ext4.js";
import { parseSubIds } from "../../../src/image/subid.js";

const req = { suite: "bookworm", tree: "/s/b/tree", overlayTar: "/tmp/banger-overlay-x.tar", bootOut: "/s/b/boot" };

void test("mmdebstrap runs in root mode as root and unshare mode as the owner, with the image's packages and hooks", () => {
  const asRoot = mmdebstrapArgv({ ...req, uid: 0 });
  assert.ok(asRoot.includes("--mode=root"));
  assert.ok(mmdebstrapArgv({ ...req, uid: 1000 }).includes("--mode=unshare"));
  const include = asRoot.find((a) => a.startsWith("--include="));
  for (const p of ["openssh-server", "systemd-sysv", "linux-image-cloud-amd64", "sudo", "curl", "less", "procps", "vim-tiny"]) assert.ok(include?.split("=")[1]?.split(",").includes(p), p);
  assert.equal(DEBIAN_PACKAGES.length, include?.split("=")[1]?.split(",").length);
  assert.ok(asRoot.includes("--customize-hook=tar-in /tmp/banger-overlay-x.tar /"));
  assert.ok(asRoot.includes("--customize-hook=copy-out /boot /s/b/boot"));
  // Per-VM host keys only: the build must not bake shared ones into the image.
  assert.ok(asRoot.some((a) => a.startsWith("--customize-hook=rm ") && a.includes("/etc/ssh/ssh_host_*")));
  assert.deepEqual(asRoot.slice(-2), ["bookworm", "/s/b/tree"]);
});

void test("paths that would split or quote an mmdebstrap hook line, and unknown suites, are refused", () => {
  for (const bad of ["/tmp/a b.tar", "/tmp/a\"b.tar", "/tmp/a;b", "relative.tar", "/tmp/a\nb"]) {
    assert.throws(() => mmdebstrapArgv({ ...req, overlayTar: bad, uid: 0 }), /cannot be used in an mmdebstrap hook/, JSON.stringify(bad));
  }
  assert.throws(() => mmdebstrapArgv({ ...req, suite: "sid", uid: 0 }), /unsupported Debian suite/);
  assert.deepEqual(overlayTarArgv("/o", "/o.tar"), ["tar", "--owner=0", "--group=0", "--numeric-owner", "-C", "/o", "-cf", "/o.tar", "."]);
});

void test("tree ownership: nothing extra as root, a root-mapped user namespace otherwise", () => {
  assert.deepEqual(asTreeRoot(["mkfs.ext4", "x"], 0), ["mkfs.ext4", "x"]);
  assert.deepEqual(asTreeRoot(["mkfs.ext4", "x"], 1000), ["unshare", "--map-root-user", "--", "mkfs.ext4", "x"]);
});

void test("subuid ranges are matched by name or uid and must hold 65536 ids", () => {
  const text = "alice:100000:65536\n1001:200000:65536\nbob:300000:1000\n";
  assert.deepEqual(parseSubIds(text, "alice", 1000), { start: 100000, count: 65536 });
  assert.deepEqual(parseSubIds(text, "carol", 1001), { start: 200000, count: 65536 });
  assert.equal(parseSubIds(text, "bob", 1002), undefined);
  assert.equal(parseSubIds("", "alice", 1000), undefined);
});
