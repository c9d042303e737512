import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { test } from "node:test";
import { buildImage } from "../../../src/image/build.js";
import { assertBootableVmlinux, readElfFile } from "../../../src/image/elf.js";
import { isExt4 } from "../../../src/image/ext4.js";
import { state } from "../../../src/paths/paths.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { needsCommands, requires } from "../../helpers/requirements.js";

/*
 * The default image from distro packages (needs the Debian mirror; ~1.5-3.5 min here).
 * Booting it is the e2e suite's job; this checks what the build promises:
 * all four files, a PVH vmlinux, root ownership, hardened sshd, networkd on,
 * no baked-in host keys, no /boot, and no leftovers.
 */
void test("debian:bookworm builds the default image with hardened sshd and no shared host keys", {
  skip: requires(needsCommands("mmdebstrap", "mkfs.ext4", "debugfs", "busybox")),
  timeout: 15 * 60_000,
}, async (t) => {
  const dir = await mkdtemp("/tmp/bgt-img-deb-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  const steps: string[] = [];
  const img = await buildImage({ name: "default", source: { kind: "debian", suite: "bookworm" } }, {
    stateDir: dir, runner: systemRunner, uid: process.getuid?.() ?? 0,
    onProgress: (e) => { if (e.state === "done") steps.push(`${e.step} ${e.elapsedMs ?? 0}ms`); },
  });
  t.diagnostic(`steps: ${steps.join(", ")}`);
  assert.deepEqual(steps.map((s) => s.split(" ")[0]), ["debootstrap", "kernel", "initrd", "rootfs.ext4"]);
  assert.equal(img.flavor, "systemd");
  assert.match(img.kernelVersion ?? "", /-cloud-amd64$/);
  assertBootableVmlinux(await readElfFile(img.vmlinuxPath), "vmlinux");
  assert.ok(await isExt4(img.rootfsPath));
  const debugfs = (req: string): Promise<string> => runText(systemRunner, ["debugfs", "-R", req, img.rootfsPath]);
  assert.match(await debugfs("cat /etc/ssh/sshd_config.d/banger.conf"), /PermitRootLogin prohibit-password[\s\S]*PasswordAuthentication no/);
  assert.match(await debugfs("stat /etc/ssh/sshd_config.d/banger.conf"), /User:\s+0\s+Group:\s+0/);
  assert.match(await debugfs("stat /usr/bin/sudo"), /Mode:\s+04755[\s\S]*User:\s+0\s+Group:\s+0/);
  assert.match(await debugfs("stat /etc/systemd/system/multi-user.target.wants/systemd-networkd.service"), /Type: symlink/);
  assert.doesNotMatch(await debugfs("ls /etc/ssh"), /ssh_host_/);
  assert.doesNotMatch(await debugfs("ls /boot"), /vmlinuz/);
  assert.deepEqual(await readdir(state.imageBuildDir(dir)), []);
});
