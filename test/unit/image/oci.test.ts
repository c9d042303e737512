import type { CliContext } from "../../../src/cli/command.js";
import assert from "node:assert/strict";
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { test } from "node:test";
import { fromValue } from "../../../src/cli/commands/image/build.js";
import { parseFrom } from "../../../src/image/build.js";
import { setOwners } from "../../../src/image/ext4-owners.js";
import { makeExt4 } from "../../../src/image/ext4.js";
import { execDefaultsFromConfig, openOciArchive, type OciImage, userByUid } from "../../../src/image/oci-archive.js";
import { LayerTree } from "../../../src/image/oci-tree.js";
import { readTar } from "../../../src/image/tar-stream.js";
import { effectiveExecOptions } from "../../../src/system/exec-defaults.js";
import { systemRunner } from "../../../src/system/runner.js";
import { dockerSaveTar, tarBytes, type TestTarEntry, writeOciLayout } from "../../helpers/oci-archive.js";

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), "bgt-oci-"));
  t.after(() => rm(d, { recursive: true, force: true }));
  return d;
}

async function applyAll(image: OciImage, dir: string): Promise<LayerTree> {
  const tree = new LayerTree(dir);
  for (const [i, l] of image.layers.entries()) for await (const { entry, body } of l.entries()) await tree.apply(entry, body, i, l.label);
  return tree;
}

async function applyLayers(dir: string, layers: readonly (readonly TestTarEntry[])[]): Promise<LayerTree> {
  const tree = new LayerTree(dir);
  for (const [i, entries] of layers.entries()) {
    for await (const { entry, body } of readTar(Readable.from([tarBytes(entries)]))) await tree.apply(entry, body, i, String(i + 1));
  }
  return tree;
}

void test("the tar reader takes ustar, PAX long names and xattrs, and rejects a bad checksum", async () => {
  const long = `${"d".repeat(120)}/file`;
  const bytes = tarBytes([{ name: "a/", type: "dir", mode: 0o750, uid: 1000, gid: 1001 }, { name: long, content: "hello", xattrs: { "user.k": "v" } }, { name: "a/l", type: "symlink", linkname: "/etc/passwd" }]);
  const seen = [];
  for await (const { entry, body } of readTar(Readable.from([bytes.subarray(0, 700), bytes.subarray(700)]))) {
    const chunks: Buffer[] = [];
    for await (const c of body) chunks.push(c);
    seen.push({ name: entry.name, type: entry.type, mode: entry.mode, uid: entry.uid, body: Buffer.concat(chunks).toString(), x: entry.xattrs.get("user.k")?.toString(), link: entry.linkname });
  }
  assert.deepEqual(seen, [
    { name: "a/", type: "dir", mode: 0o750, uid: 1000, body: "", x: undefined, link: "" },
    { name: long, type: "file", mode: 0o644, uid: 0, body: "hello", x: "v", link: "" },
    { name: "a/l", type: "symlink", mode: 0o644, uid: 0, body: "", x: undefined, link: "/etc/passwd" },
  ]);
  const bad = Buffer.from(bytes);
  bad[0] = 0x7a;
  await assert.rejects(readTar(Readable.from([bad])).next(), /bad header checksum/);
});

const LOWER: TestTarEntry[] = [{ name: "etc/", type: "dir" }, { name: "etc/keep", content: "k" }, { name: "etc/gone", content: "g" }, { name: "opq/", type: "dir" }, { name: "opq/old", content: "o" }];
const UPPER: TestTarEntry[] = [{ name: "etc/.wh.gone" }, { name: "opq/new", content: "n" }, { name: "opq/.wh..wh..opq" }, { name: "app/", type: "dir", uid: 1000, gid: 1000, mode: 0o700 }];

void test("an OCI layout with gzip layers: digests checked, whiteouts and opaque dirs applied, config defaults read", async (t) => {
  const d = await scratch(t);
  const layout = join(d, "layout");
  await writeOciLayout(layout, [tarBytes(LOWER), tarBytes(UPPER)], { User: "app:app", Env: ["PATH=/usr/bin:/bin", "EMPTY"], WorkingDir: "/app/" });
  const image = await openOciArchive(layout);
  assert.deepEqual(image.defaults, { user: "app", env: [["PATH", "/usr/bin:/bin"], ["EMPTY", ""]], workdir: "/app" });
  const dir = join(d, "tree");
  await mkdir(dir);
  await applyAll(image, dir);
  assert.deepEqual(await readdir(join(dir, "etc")), ["keep"]);
  assert.deepEqual(await readdir(join(dir, "opq")), ["new"]);
});

void test("layers: whiteouts remove lower files, an opaque marker hides only lower layers' entries; owners are listed for debugfs", async (t) => {
  const d = await scratch(t);
  const dir = join(d, "tree");
  await mkdir(dir);
  const tree = await applyLayers(dir, [LOWER, UPPER]);
  await tree.finish();
  assert.deepEqual((await readdir(join(dir, "etc"))).sort(), ["keep"]);
  assert.deepEqual(await readdir(join(dir, "opq")), ["new"]);
  assert.equal((await stat(join(dir, "app"))).mode & 0o7777, 0o700);
  assert.deepEqual(tree.ownership().map((o) => [o.path, o.uid, o.gid]), [["/app", 1000, 1000]]);
  assert.equal(tree.stats.whiteouts, 2);
});

void test("layers cannot reach outside the tree: symlinked parents resolve inside it, '..' and outside hard links are refused, devices skipped", async (t) => {
  const d = await scratch(t);
  const dir = join(d, "tree");
  const outside = join(d, "outside");
  await mkdir(dir);
  await mkdir(outside);
  const tree = await applyLayers(dir, [[
    { name: "escape", type: "symlink", linkname: outside },
    { name: "up", type: "symlink", linkname: "../../../.." },
    { name: "dev/null", type: "char" },
    { name: "fifo", type: "fifo" },
  ], [
    { name: "escape/pwned", content: "x" },
    { name: "up/etc/pwned", content: "y" },
  ]]);
  assert.deepEqual(await readdir(outside), [], "nothing written through the absolute symlink");
  assert.equal(await readFile(join(dir, outside.slice(1), "pwned"), "utf8"), "x", "it landed at the link's target inside the tree");
  assert.equal(await readFile(join(dir, "etc/pwned"), "utf8"), "y", "'..' through a link stops at the tree's root");
  assert.equal(await readlink(join(dir, "escape")), outside, "the link itself is kept for the guest");
  assert.deepEqual(tree.stats.skipped, ["dev/null", "fifo"]);
  await assert.rejects(applyLayers(dir, [[{ name: "../evil", content: "z" }]]), /'\.\.' component/);
  await assert.rejects(applyLayers(join(d, "tree"), [[{ name: "a/../../evil", content: "z" }]]), /'\.\.' component/);
  const d2 = join(d, "t2");
  await mkdir(d2);
  await assert.rejects(applyLayers(d2, [[{ name: "h", type: "hardlink", linkname: "../../etc/passwd" }]]), /'\.\.' component/);
  await assert.rejects(applyLayers(d2, [[{ name: "h", type: "hardlink", linkname: "etc/passwd" }]]), /not a file in the image/);
  // A file replaced by a directory and a link through a link: the model follows what the layers made.
  const d3 = join(d, "t3");
  await mkdir(d3);
  await applyLayers(d3, [[{ name: "usr/bin/", type: "dir" }, { name: "bin", type: "symlink", linkname: "usr/bin" }, { name: "x", content: "1" }], [{ name: "bin/tool", content: "t", mode: 0o4755 }, { name: "x/", type: "dir" }, { name: "h", type: "hardlink", linkname: "usr/bin/tool" }]]).then((tr) => tr.finish());
  assert.equal(await readFile(join(d3, "usr/bin/tool"), "utf8"), "t");
  assert.equal((await lstat(join(d3, "bin"))).isSymbolicLink(), true);
  assert.equal((await stat(join(d3, "x"))).isDirectory(), true);
  assert.equal((await stat(join(d3, "h"))).ino, (await stat(join(d3, "usr/bin/tool"))).ino);
  assert.equal((await stat(join(d3, "h"))).mode & 0o7777, 0o4755);
});

void test("docker save tarballs: manifest.json, diff_ids checked; one image only; zstd, other architectures and bad digests refused", async (t) => {
  const d = await scratch(t);
  const file = join(d, "save.tar");
  await writeFile(file, dockerSaveTar([tarBytes(LOWER), tarBytes(UPPER)], { User: "1000", WorkingDir: "/srv" }));
  const image = await openOciArchive(file);
  assert.deepEqual(image.defaults, { user: "1000", env: [], workdir: "/srv" });
  const dir = join(d, "tree");
  await mkdir(dir);
  await applyAll(image, dir);
  assert.deepEqual(await readdir(join(dir, "opq")), ["new"]);
  await writeFile(join(d, "two.tar"), dockerSaveTar([tarBytes(LOWER)], {}, { images: 2 }));
  await assert.rejects(openOciArchive(join(d, "two.tar")), /lists 2 images/);
  await writeFile(join(d, "junk"), "not a tar");
  await assert.rejects(openOciArchive(join(d, "junk")), /is not a tar archive/);

  const layout = join(d, "layout");
  const { layerDigests } = await writeOciLayout(layout, [tarBytes(LOWER)], {});
  const blob = join(layout, "blobs/sha256", (layerDigests[0] ?? "").slice(7));
  const good = await readFile(blob);
  const bad = Buffer.from(good);
  bad[bad.length - 5] = (bad[bad.length - 5] ?? 0) ^ 0xff;
  await writeFile(blob, bad);
  const tampered = await openOciArchive(layout);
  const d2 = join(d, "t2");
  await mkdir(d2);
  await assert.rejects(applyAll(tampered, d2), /does not match|incorrect|invalid|check/i);
  await writeFile(blob, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), good]));
  await assert.rejects(applyAll(await openOciArchive(layout), d2), /zstd-compressed/);
  const arm = join(d, "arm");
  await writeOciLayout(arm, [tarBytes(LOWER)], {}, { architecture: "arm64" });
  await assert.rejects(openOciArchive(arm), /is for arm64/);
});

void test("config defaults are checked before they can reach a remote command; flags override them", () => {
  assert.throws(() => execDefaultsFromConfig({ config: { User: "a b" } }), /not a user name or uid/);
  assert.throws(() => execDefaultsFromConfig({ config: { Env: ["1X=y"] } }), /not NAME=VALUE/);
  assert.throws(() => execDefaultsFromConfig({ config: { WorkingDir: "rel" } }), /not an absolute path/);
  assert.deepEqual(execDefaultsFromConfig({ config: { User: "root" } }), { user: null, env: [], workdir: null });
  assert.deepEqual(execDefaultsFromConfig({}), { user: null, env: [], workdir: null });
  const d = { user: "app", env: [["A", "1"], ["B", "2"]] as [string, string][], workdir: "/w" };
  assert.deepEqual(effectiveExecOptions(d, {}), { env: [["A", "1"], ["B", "2"]], user: "app", workdir: "/w" });
  assert.deepEqual(effectiveExecOptions(d, { user: "root", workdir: "/", env: [["B", "x"]] }), { env: [["A", "1"], ["B", "x"]], user: "root", workdir: "/" });
});

void test("owners and xattrs are written into the ext4 by debugfs, quotes and spaces in names included", async (t) => {
  const d = await scratch(t);
  const dir = join(d, "tree");
  await mkdir(dir);
  const tree = await applyLayers(dir, [[{ name: "home/app/", type: "dir", uid: 1000, gid: 1000 }, { name: "home/app/my \"file\"", content: "x", uid: 1000, gid: 70000, xattrs: { "user.note": "hi" } }, { name: "root-file", content: "r" }]]);
  await tree.finish();
  const img = join(d, "rootfs.ext4");
  await makeExt4(systemRunner, dir, img, 16 * 1024 * 1024);
  await setOwners(systemRunner, img, tree.ownership(), d);
  const ls = (await systemRunner.run(["debugfs", "-R", "ls -l /home/app", img])).stdout.toString();
  assert.match(ls, /\s1000\s+70000\s+1\s.*my "file"/);
  assert.match(ls, /40755 \(2\)\s+1000\s+1000\s/);
  const root = (await systemRunner.run(["debugfs", "-R", "ls -l /", img])).stdout.toString();
  assert.match(root, /100644 \(1\)\s+0\s+0\s+1\s.*root-file/);
  const ea = (await systemRunner.run(["debugfs", "-R", "ea_get \"/home/app/my \"\"file\"\"\" user.note", img])).stdout.toString();
  assert.match(ea, /hi/);
  await assert.rejects(setOwners(systemRunner, img, [{ path: "/missing", uid: 5, gid: 5, xattrs: new Map() }], d), /setting owners .* failed: .*missing/);
});

/** fromValue reads only `remote` (absent: this host's daemon) from the CLI context. */
const LOCAL_CTX = {} as CliContext;

void test("--from oci-archive:PATH: the CLI makes PATH absolute, the daemon checks it exists", async (t) => {
  assert.equal(fromValue(LOCAL_CTX, "oci-archive:rel/x.tar"), `oci-archive:${join(process.cwd(), "rel/x.tar")}`);
  assert.equal(fromValue(LOCAL_CTX, "oci-archive:/abs"), "oci-archive:/abs");
  assert.equal(fromValue(LOCAL_CTX, "debian:bookworm"), "debian:bookworm");
  const d = await scratch(t);
  assert.deepEqual(await parseFrom(`oci-archive:${d}`), { kind: "oci", path: d });
  await assert.rejects(parseFrom("oci-archive:rel"), /absolute PATH/);
  await assert.rejects(parseFrom(`oci-archive:${d}/none`), /neither an OCI layout directory nor an archive file/);
});

void test("after finish, unlock gives every directory back to the owner so the build's cleanup can remove it", async (t) => {
  const d = await scratch(t);
  const tree = await applyLayers(d, [[{ name: "ro/", type: "dir", mode: 0o555 }, { name: "ro/sub/", type: "dir", mode: 0o500 }, { name: "ro/sub/f", content: "x", mode: 0o400 }]]);
  await tree.finish();
  assert.equal((await stat(join(d, "ro"))).mode & 0o7777, 0o555);
  assert.equal((await stat(join(d, "ro/sub"))).mode & 0o7777, 0o500);
  await tree.unlock();
  assert.equal((await stat(join(d, "ro"))).mode & 0o7777, 0o700);
  assert.equal((await stat(join(d, "ro/sub"))).mode & 0o7777, 0o700);
});

void test("the tar reader agrees with GNU tar on its gnu and pax formats (long names, hard links, symlinks)", async (t) => {
  const d = await scratch(t);
  const src = join(d, "src");
  const long = `${"n".repeat(150)}/leaf`;
  await mkdir(join(src, "n".repeat(150)), { recursive: true });
  await writeFile(join(src, long), "L");
  await writeFile(join(src, "a"), "A");
  await systemRunner.run(["ln", "--", join(src, "a"), join(src, "hard")]);
  await systemRunner.run(["ln", "-s", "--", "/abs/target", join(src, "sym")]);
  for (const format of ["gnu", "pax"]) {
    const out = join(d, `${format}.tar`);
    await systemRunner.run(["tar", `--format=${format}`, "--sort=name", "-C", src, "-cf", out, "."]);
    const got: string[] = [];
    for await (const { entry, body } of readTar(Readable.from([await readFile(out)]))) {
      const parts: Buffer[] = [];
      for await (const c of body) parts.push(c);
      got.push(`${entry.type} ${entry.name} ${entry.linkname} ${Buffer.concat(parts).toString()}`);
    }
    assert.deepEqual(got, [
      "dir ./  ", "file ./a  A", "hardlink ./hard ./a ", `dir ./${"n".repeat(150)}/  `, `file ./${long}  L`, "symlink ./sym /abs/target ",
    ], format);
  }
});

void test("a numeric User is named from the image's own passwd (su can switch to a name; only util-linux setpriv takes a uid)", async (t) => {
  const d = await scratch(t);
  const tree = await applyLayers(d, [[{ name: "etc/passwd", content: "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n" }, { name: "etc/link", type: "symlink", linkname: "passwd" }]]);
  const passwd = (await tree.readSmallFile("etc/passwd", 4096))?.toString();
  assert.equal(passwd?.split("\n")[1], "app:x:1000:1000::/home/app:/bin/sh");
  assert.equal(await tree.readSmallFile("etc/passwd", 10), undefined, "over the limit");
  assert.equal(await tree.readSmallFile("etc/link", 4096), undefined, "a symlink is not read");
  const d1 = { user: "1000", env: [], workdir: null };
  assert.equal(userByUid(d1, passwd).user, "app");
  assert.equal(userByUid({ ...d1, user: "1001" }, passwd).user, "1001", "no entry: the uid stays");
  assert.equal(userByUid({ ...d1, user: "bob" }, passwd).user, "bob");
  assert.equal(userByUid(d1, undefined).user, "1000");
});
