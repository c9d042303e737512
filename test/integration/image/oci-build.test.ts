import assert from "node:assert/strict";
import { mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { buildImage, type BuildContext, ImageInputError } from "../../../src/image/build.js";
import { findKernel } from "../../../src/image/host-kernel.js";
import { state } from "../../../src/paths/paths.js";
import { systemRunner } from "../../../src/system/runner.js";
import { tarBytes, type TestTarEntry, writeOciLayout } from "../../helpers/oci-archive.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";

/*
 * `--from oci-archive:` through buildImage, short of booting (the e2e boots one):
 * what lands in the ext4 for an image with systemd, and bad archives leaving
 * nothing behind.
 */

let hostKernel = false;
try {
  await findKernel("/");
  hostKernel = true;
} catch {
  hostKernel = false;
}
const SKIP = requires(needsRoot(), needsCommands("mkfs.ext4", "debugfs", "busybox", "dropbear", "cpio")) || (hostKernel ? false : "needs linux-image-cloud-amd64 on the host");

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp("/tmp/bgt-oci-build-");
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function ctx(dir: string): BuildContext {
  return { stateDir: join(dir, "state"), runner: systemRunner, uid: process.getuid?.() ?? 0 };
}

async function layout(dir: string, layers: readonly (readonly TestTarEntry[])[]): Promise<string> {
  const p = join(dir, "layout");
  await writeOciLayout(p, layers.map((l) => tarBytes(l)), { User: "app" });
  return p;
}

async function assertNothingLeft(dir: string, name: string): Promise<void> {
  await assert.rejects(stat(state.imageDir(join(dir, "state"), name)), { code: "ENOENT" });
  assert.deepEqual(await readdir(state.imageBuildDir(join(dir, "state"))).catch(() => []), [], "build dir must be empty");
}

async function debugfs(image: string, cmd: string): Promise<string> {
  return (await systemRunner.run(["debugfs", "-R", cmd, image])).stdout.toString();
}

const SYSTEMD_BASE: TestTarEntry[] = [
  { name: "lib/systemd/systemd", content: "#!/bin/true\n", mode: 0o755 },
  { name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n" },
];

void test("an image with systemd and sshd gets the Debian image's sshd drop-in, networkd and agent unit, and keeps the systemd flavor", { skip: SKIP, timeout: 300_000 }, async (t) => {
  const dir = await scratch(t);
  const from = await layout(dir, [[...SYSTEMD_BASE, { name: "usr/sbin/sshd", content: "#!/bin/true\n", mode: 0o755 }]]);
  const built = await buildImage({ name: "sd", source: { kind: "oci", path: from } }, ctx(dir));
  assert.equal(built.flavor, "systemd");
  assert.deepEqual(built.execDefaults, { user: "app", env: [], workdir: null });
  const agent = await debugfs(built.rootfsPath, "stat /usr/lib/banger/agent");
  assert.match(agent, /Mode: +0755/);
  assert.match(await debugfs(built.rootfsPath, "cat /etc/ssh/sshd_config.d/banger.conf"), /PermitRootLogin prohibit-password/);
  assert.match(await debugfs(built.rootfsPath, "ls -l /etc/systemd/system/multi-user.target.wants"), /banger-agent\.service/);
  assert.doesNotMatch(await debugfs(built.rootfsPath, "ls /usr/sbin"), /dropbear/, "no banger dropbear in a systemd image");
});

void test("an image with systemd but no sshd, and an archive that climbs out with '..', fail saying why and leave nothing", { skip: SKIP, timeout: 300_000 }, async (t) => {
  const dir = await scratch(t);
  const noSshd = await layout(dir, [SYSTEMD_BASE]);
  await assert.rejects(buildImage({ name: "nossh", source: { kind: "oci", path: noSshd } }, ctx(dir)), (e: unknown) => e instanceof ImageInputError && /has no \/usr\/sbin\/sshd: install openssh-server/.test(e.message));
  await assertNothingLeft(dir, "nossh");
  await rm(noSshd, { recursive: true });
  const climbing = await layout(dir, [[{ name: "etc/ok", content: "x" }], [{ name: "../../../../tmp/bgt-oci-escaped", content: "pwned" }]]);
  await assert.rejects(buildImage({ name: "climb", source: { kind: "oci", path: climbing } }, ctx(dir)), /'\.\.' component; refusing an archive that climbs out/);
  await assertNothingLeft(dir, "climb");
  await assert.rejects(stat("/tmp/bgt-oci-escaped"), { code: "ENOENT" });
});
