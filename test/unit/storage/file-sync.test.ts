import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { FileSyncError, hostPathInHome, planFileSync } from "../../../src/daemon/storage/file-sync.js";

async function home(t: { after: (fn: () => Promise<void>) => void }): Promise<{ home: string; outside: string }> {
  const base = await mkdtemp("/tmp/bgt-disk-home-");
  t.after(() => rm(base, { recursive: true, force: true }));
  const h = `${base}/alice`;
  await mkdir(`${h}/.config/tool`, { recursive: true });
  await writeFile(`${h}/.gitconfig`, "[user]\n\tname = alice\n");
  await chmod(`${h}/.gitconfig`, 0o640);
  await writeFile(`${h}/.config/tool/a.conf`, "a\n");
  await writeFile(`${h}/.config/tool/b.conf`, "b\n");
  await writeFile(`${base}/secret`, "not alice's to share\n");
  await mkdir(`${base}/alice2`);
  await writeFile(`${base}/alice2/x`, "prefix trick\n");
  return { home: h, outside: base };
}

void test("files and trees from the home are planned, /root paths go to the work disk", async (t) => {
  const { home: h } = await home(t);
  await symlink(`${h}/.gitconfig`, `${h}/link-inside`); // a symlink that stays in the home is fine
  const plan = await planFileSync(
    [
      { host: "~/.gitconfig", guest: "/root/.gitconfig" },
      { host: ".config/tool", guest: "/etc/tool", mode: "0600" },
      { host: `${h}/link-inside`, guest: "/opt/gc" },
    ],
    h,
  );
  assert.deepEqual(
    plan.work.files.map((f) => [f.path, String(f.data), f.mode.toString(8), f.uid, f.gid]),
    [["/.gitconfig", "[user]\n\tname = alice\n", "640", 0, 0]],
  );
  assert.deepEqual(
    plan.root.files.map((f) => [f.path, String(f.data), f.mode.toString(8)]),
    [
      ["/etc/tool/a.conf", "a\n", "600"],
      ["/etc/tool/b.conf", "b\n", "600"],
      ["/opt/gc", "[user]\n\tname = alice\n", "640"],
    ],
  );
  assert.deepEqual(plan.root.dirs.map((d) => d.path), ["/etc/tool"]);
});

void test("../ escapes, absolute paths outside the home and prefix tricks are refused", async (t) => {
  const { home: h, outside } = await home(t);
  for (const host of ["../secret", "~/../secret", ".config/../../secret", `${outside}/secret`, "/etc/passwd", `${outside}/alice2/x`, "~/x\n"]) {
    await assert.rejects(planFileSync([{ host, guest: "/x" }], h), FileSyncError, host);
  }
  assert.throws(() => hostPathInHome("../secret", h), /"\.\."/);
  assert.equal(hostPathInHome("~/a/b", h), `${h}/a/b`);
});

void test("symlinks that escape the home are refused, also inside a synced directory", async (t) => {
  const { home: h, outside } = await home(t);
  await symlink(`${outside}/secret`, `${h}/escape`);
  await symlink("/etc", `${h}/etc-dir`);
  await symlink(`${outside}/secret`, `${h}/.config/tool/sneaky`);
  await assert.rejects(planFileSync([{ host: "escape", guest: "/x" }], h), /outside the home directory.*symlinks out of the home are refused/s);
  await assert.rejects(planFileSync([{ host: "etc-dir/passwd", guest: "/x" }], h), /outside the home/);
  await assert.rejects(planFileSync([{ host: ".config/tool", guest: "/etc/tool" }], h), /sneaky resolves to .*outside the home/);
});

void test("bad guest paths and missing sources give clear errors", async (t) => {
  const { home: h } = await home(t);
  await assert.rejects(planFileSync([{ host: ".gitconfig", guest: '/etc/x"y' }], h), /guest path/);
  await assert.rejects(planFileSync([{ host: "nope", guest: "/x" }], h), /does not exist/);
  await assert.rejects(planFileSync([{ host: ".gitconfig", guest: "/root" }], h), /work disk root/);
});
