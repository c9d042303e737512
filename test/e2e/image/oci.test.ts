import assert from "node:assert/strict";
import { chownSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { dockerSaveTar, tarBytes, writeOciLayout } from "../../helpers/oci-archive.js";
import { createNetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startStack } from "../../helpers/stack.js";
import { cliOk, tinyStackConfig } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "debugfs", "nft"));

/**
 * A two-layer image made here from the host's busybox-static: a non-root user with a
 * workdir, a file the second layer whites out, a directory an opaque marker empties.
 * No ssh server and no init in it: the build adds banger's.
 */
function layers(): Buffer[] {
  const busybox = readFileSync("/bin/busybox");
  const base = tarBytes([
    { name: "bin/", type: "dir" },
    { name: "bin/busybox", content: busybox, mode: 0o755 },
    { name: "bin/sh", type: "symlink", linkname: "busybox" },
    { name: "etc/", type: "dir" },
    { name: "etc/passwd", content: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n" },
    { name: "etc/group", content: "root:x:0:\ntty:x:5:\napp:x:1000:\n" },
    { name: "etc/doomed", content: "the next layer removes me\n" },
    { name: "var/cache/", type: "dir" },
    { name: "var/cache/stale", content: "hidden by an opaque dir\n" },
    { name: "home/app/", type: "dir", uid: 1000, gid: 1000, mode: 0o750 },
  ]);
  const top = tarBytes([
    { name: "etc/.wh.doomed" },
    { name: "var/cache/.wh..wh..opq" },
    { name: "var/cache/fresh", content: "new\n" },
    { name: "srv/app/", type: "dir", uid: 1000, gid: 1000 },
    { name: "srv/app/hello", content: "hello\n", uid: 1000, gid: 1000, mode: 0o640 },
  ]);
  return [base, top];
}

const CONFIG = { User: "app", WorkingDir: "/srv/app", Env: ["PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "GREETING=hi there"] };

test("image build --from oci-archive: layers with whiteouts, the image's user/workdir/env used by vm run and vm exec", { skip: SKIP, timeout: 1_200_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-oci");
  cleanup.push("netns", () => ns.destroy());
  const stack = await startStack({ user, netns: ns, config: tinyStackConfig("qemu") });
  cleanup.push("stack", async () => {
    await stack.cli(["vm", "rm", "--force", "ocirun"]).catch(() => undefined);
    await stack.stop();
  });
  const work = mkdtempSync(join(tmpdir(), "banger-oci-"));
  cleanup.push("work dir", () => { rmSync(work, { recursive: true, force: true }); return Promise.resolve(); });
  const layout = join(work, "layout");
  await writeOciLayout(layout, layers(), CONFIG);
  const saved = join(work, "saved.tar");
  writeFileSync(saved, dockerSaveTar(layers(), { ...CONFIG, User: "1000:1000" }));
  for (const p of [work, layout, join(layout, "blobs"), join(layout, "blobs/sha256"), saved]) chownSync(p, user.uid, user.gid);

  await cliOk(stack, ["image", "build", "--name", "oci", "--from", `oci-archive:${layout}`], 900_000);
  const show = await cliOk(stack, ["image", "show", "oci"]);
  assert.match(show, /^flavor +busybox$/m);
  assert.match(show, /^exec user +app$/m);
  assert.match(show, /^exec workdir +\/srv\/app$/m);
  assert.match(show, /^exec env +GREETING=hi there$/m);

  // The acceptance line: the image's user, as docker run would.
  assert.equal(await cliOk(stack, ["vm", "run", "--image", "oci", "--name", "ocirun", "--", "id", "-un"], 900_000), "app\n");
  assert.equal(await cliOk(stack, ["vm", "exec", "ocirun", "--", "pwd"]), "/srv/app\n");
  assert.equal(await cliOk(stack, ["vm", "exec", "ocirun", "--", "sh", "-c", "echo $GREETING"]), "hi there\n");
  assert.equal(await cliOk(stack, ["vm", "exec", "-u", "root", "-w", "/", "ocirun", "--", "sh", "-c", "id -u; pwd"]), "0\n/\n", "flags override the image");
  assert.equal(await cliOk(stack, ["vm", "ssh", "ocirun", "--", "cat", "hello"]), "hello\n", "vm ssh runs in the workdir, as the user (the file is 0640 app's)");
  const gone = await stack.cli(["vm", "exec", "ocirun", "--", "ls", "/etc/doomed"]);
  assert.notEqual(gone.code, 0, "the whiteout in layer 2 removed /etc/doomed");
  assert.equal(await cliOk(stack, ["vm", "exec", "ocirun", "--", "ls", "/var/cache"]), "fresh\n", "the opaque marker hid layer 1's entries");
  assert.equal(await cliOk(stack, ["vm", "exec", "-u", "root", "ocirun", "--", "stat", "-c", "%u:%g %a", "/srv/app/hello", "/home/app", "/etc/passwd"]), "1000:1000 640\n1000:1000 750\n0:0 644\n", "owners and modes from the layers");
  await cliOk(stack, ["vm", "rm", "--force", "ocirun"], 180_000);

  // The same image as a docker save tarball: it builds, and its numeric User is named from the image's passwd.
  await cliOk(stack, ["image", "build", "--name", "ocisave", "--from", `oci-archive:${saved}`], 900_000);
  assert.match(await cliOk(stack, ["image", "show", "ocisave"]), /^exec user +app$/m);
  // Bad input says what is wrong and leaves no image behind.
  const bad = await stack.cli(["image", "build", "--name", "ocibad", "--from", `oci-archive:${join(work, "missing")}`]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /neither an OCI layout directory nor an archive file/);
  assert.doesNotMatch(await cliOk(stack, ["image", "ls"]), /ocibad/);
  const tampered = join(work, "tampered");
  const { layerDigests } = await writeOciLayout(tampered, layers(), CONFIG);
  const blob = join(tampered, "blobs/sha256", (layerDigests[1] ?? "").slice(7));
  writeFileSync(blob, Buffer.concat([readFileSync(blob), Buffer.from("x")]));
  for (const p of [tampered, join(tampered, "blobs"), join(tampered, "blobs/sha256")]) chownSync(p, user.uid, user.gid);
  const tamperedBuild = await stack.cli(["image", "build", "--name", "ocitamper", "--from", `oci-archive:${tampered}`], { timeoutMs: 600_000 });
  assert.notEqual(tamperedBuild.code, 0);
  assert.match(tamperedBuild.stderr, /does not match its digest|unexpected end|trailing|incorrect/);
  assert.doesNotMatch(await cliOk(stack, ["image", "ls"]), /ocitamper/);
  assert.deepEqual(readdirSync(join(stack.stateDir, "images", ".build")), [], "no build leftovers, failed builds included");
});
