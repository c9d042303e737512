import assert from "node:assert/strict";
import { chmodSync, chownSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { renderHostsBlock } from "../../../src/model/hosts-block.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { privNetworkStatus, privSyncHosts } from "../../../src/rpc/priv/network.js";
import { systemRunner } from "../../../src/system/runner.js";
import { startHelperInNetns, type NetnsHelper } from "../../helpers/helper-in-netns.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";

/*
 * priv.sync_hosts end to end: the real helper (root, in its own network
 * namespace) keeps the owner's block in a temp hosts file, in a root-owned
 * directory of its own: never the host's /etc/hosts.
 */

const OWNER = { uid: 4242, gid: 4343 };
const skip = requires(needsRoot(), needsCommands("ip", "mkfifo"));
const HOST_LINES = "127.0.0.1\tlocalhost\n# the admin's own comment   (spacing kept)\r\n10.0.0.5 printer.lan printer\n::1 ip6-localhost";

async function withHelper(t: { after: (fn: () => Promise<void>) => void }, opts: { hostDns?: string; dirMode?: number } = {}): Promise<{ helper: NetnsHelper; dir: string; hosts: string; ns: NetNs }> {
  const ns = await createNetNs("bgt-hosts");
  t.after(() => ns.destroy());
  const dir = mkdtempSync("/tmp/bgt-hosts-");
  t.after(() => { rmSync(dir, { recursive: true, force: true }); return Promise.resolve(); });
  chmodSync(dir, opts.dirMode ?? 0o755);
  const hosts = join(dir, "hosts");
  writeFileSync(hosts, HOST_LINES, { mode: 0o644 });
  chmodSync(hosts, 0o644);
  const helper = await startHelperInNetns(ns, OWNER, `[network]\nbridge = "bgtbr1"\ncidr = "172.16.92.0/24"\nhost_dns = "${opts.hostDns ?? "hosts"}"\nhosts_file = "${hosts}"\n`);
  t.after(() => helper.stop());
  return { helper, dir, hosts, ns };
}

const web = { name: "web", ip: "172.16.92.2" };
const db = { name: "db", ip: "172.16.92.3" };

void test("sync_hosts keeps the owner's block in network.hosts_file: other bytes, mode and owner kept; idempotent; stale entries go; nothing left beside it", { skip, timeout: 60_000 }, async (t) => {
  const { helper, dir, hosts } = await withHelper(t);
  assert.deepEqual((await helper.call(privNetworkStatus, {})).host_dns, { mode: "hosts" });
  const ino = statSync(hosts).ino;
  assert.deepEqual(await helper.call(privSyncHosts, { entries: [web, db] }), { mode: "hosts", written: true, entries: 2 });
  assert.equal(readFileSync(hosts, "utf8"), `${HOST_LINES}\n${renderHostsBlock(OWNER.uid, [web, db])}`, "the file's own lines are kept, the block appended");
  const st = statSync(hosts);
  assert.deepEqual([st.mode & 0o7777, st.uid, st.gid], [0o644, 0, 0], "mode and owner of the file it replaced");
  assert.notEqual(st.ino, ino, "replaced by rename, not rewritten in place");
  assert.deepEqual(await helper.call(privSyncHosts, { entries: [db, web] }), { mode: "hosts", written: false, entries: 2 }, "same entries: not rewritten");
  assert.deepEqual(await helper.call(privSyncHosts, { entries: [db] }), { mode: "hosts", written: true, entries: 1 });
  assert.equal(readFileSync(hosts, "utf8"), `${HOST_LINES}\n${renderHostsBlock(OWNER.uid, [db])}`, "web (stopped) is gone");
  await helper.call(privSyncHosts, { entries: [] });
  assert.equal(readFileSync(hosts, "utf8"), `${HOST_LINES}\n`, "no VMs: no block (the final newline the block needed stays)");
  assert.deepEqual(readdirSync(dir), ["hosts"], "no temp file left beside it");
  // Refused requests change nothing.
  for (const entries of [[{ name: "web\n1.2.3.4 evil.vm", ip: "172.16.92.2" }], [{ name: "web", ip: "172.16.91.2" }], [web, web]]) {
    await assert.rejects(helper.call(privSyncHosts, { entries }), (e: unknown) => e instanceof RpcError && e.code === "bad_params", JSON.stringify(entries));
  }
  assert.equal(readFileSync(hosts, "utf8"), `${HOST_LINES}\n`);
  // A missing hosts file is created root's 0644.
  rmSync(hosts);
  await helper.call(privSyncHosts, { entries: [web] });
  assert.equal(readFileSync(hosts, "utf8"), renderHostsBlock(OWNER.uid, [web]));
  assert.deepEqual([statSync(hosts).mode & 0o7777, statSync(hosts).uid], [0o644, 0]);
});

void test("sync_hosts refuses what is not root's own single-link regular file in the hosts file's place, at once and leaving it as it is", { skip, timeout: 60_000 }, async (t) => {
  const { helper, dir, hosts } = await withHelper(t);
  const outside = join(dir, "..", `${dir.split("/").at(-1) ?? ""}-outside`);
  mkdirSync(outside, { mode: 0o755 });
  t.after(() => { rmSync(outside, { recursive: true, force: true }); return Promise.resolve(); });
  const secret = join(outside, "secret");
  writeFileSync(secret, "root's\n", { mode: 0o600 });
  const plants: [string, () => Promise<void> | void, RegExp][] = [
    ["fifo", () => systemRunner.run(["mkfifo", hosts]).then(() => undefined), /FIFO, not a regular file/],
    ["hard link", () => { linkSync(secret, hosts); }, /2 hard links/],
    ["symlink", () => { symlinkSync(secret, hosts); }, /symlink/],
    ["owner's file", () => { writeFileSync(hosts, "x\n"); chownSync(hosts, OWNER.uid, OWNER.gid); }, /owned by uid 4242/],
    ["directory", () => { mkdirSync(hosts); }, /directory, not a regular file/],
  ];
  for (const [what, plant, why] of plants) {
    rmSync(hosts, { recursive: true, force: true });
    await plant();
    const before = lstatSync(hosts);
    const t0 = performance.now();
    await assert.rejects(helper.call(privSyncHosts, { entries: [web] }), (e: unknown) => e instanceof RpcError && e.code === "bad_params" && why.test(e.message), what);
    assert.ok(performance.now() - t0 < 5000, `${what}: answered at once`);
    const after = lstatSync(hosts);
    assert.deepEqual([after.ino, after.mode, after.nlink], [before.ino, before.mode, before.nlink], `${what}: left as it was`);
    assert.deepEqual(readdirSync(dir), ["hosts"], `${what}: no temp file`);
  }
  assert.equal(readFileSync(secret, "utf8"), "root's\n");
});

void test("the hosts file's directory is a trust anchor: the helper refuses to start when others may write in it; other modes never touch the file", { skip, timeout: 60_000 }, async (t) => {
  await assert.rejects(withHelper(t, { dirMode: 0o777 }), /hosts_file's directory .* writable by group or others/);
  const { helper, hosts } = await withHelper(t, { hostDns: "none", dirMode: 0o777 });
  assert.deepEqual(await helper.call(privSyncHosts, { entries: [web] }), { mode: "none", written: false, entries: 1 }, "none: the directory is not even opened");
  assert.equal(readFileSync(hosts, "utf8"), HOST_LINES);
});
