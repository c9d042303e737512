import assert from "node:assert/strict";
import { test } from "node:test";
import { invalidHostEntries, mergeHostsFile, renderHostsBlock } from "../../../src/model/hosts-block.js";
import { chooseHostDns } from "../../../src/roothelper/host-dns.js";

const HOST = "127.0.0.1\tlocalhost\n# keep me   exactly\r\n::1 ip6-localhost\n";
const web = { name: "web", ip: "172.16.90.2" };
const db = { name: "db", ip: "172.16.90.3" };

void test("renderHostsBlock: sorted NAME.vm lines between owner-named markers; nothing for no VMs", () => {
  assert.equal(renderHostsBlock(1000, [web, db]), "# BEGIN banger (managed, do not edit) uid=1000\n172.16.90.3\tdb.vm\n172.16.90.2\tweb.vm\n# END banger uid=1000\n");
  assert.equal(renderHostsBlock(1000, []), "");
});

void test("mergeHostsFile keeps every other line byte for byte, is idempotent, and drops stale entries", () => {
  const one = mergeHostsFile(HOST, 1000, [web]);
  assert.ok(one.startsWith(HOST), "the host's lines, CRLF included, come first and unchanged");
  assert.equal(one.slice(HOST.length), renderHostsBlock(1000, [web]));
  assert.equal(mergeHostsFile(one, 1000, [web]), one, "idempotent");
  const two = mergeHostsFile(one, 1000, [db]);
  assert.equal(two, HOST + renderHostsBlock(1000, [db]), "web (stale) gone, db in, block in place");
  assert.equal(mergeHostsFile(two, 1000, []), HOST, "no VMs: the block goes, the file is what it was");
  assert.equal(mergeHostsFile(HOST, 1000, []), HOST, "nothing to remove: unchanged");
});

void test("mergeHostsFile: the block stays where it is, other owners' blocks and hand-written lines are untouched", () => {
  const other = renderHostsBlock(2000, [{ name: "theirs", ip: "172.16.90.9" }]);
  const text = `a\n${renderHostsBlock(1000, [web])}b\n${other}c`;
  assert.equal(mergeHostsFile(text, 1000, [db]), `a\n${renderHostsBlock(1000, [db])}b\n${other}c`);
  assert.equal(mergeHostsFile(text, 1000, []), `a\nb\n${other}c`);
  // A file without a final newline gets one before the block; a block cut off by a hand edit ends at the end of the file.
  assert.equal(mergeHostsFile("x 1", 1000, [web]), `x 1\n${renderHostsBlock(1000, [web])}`);
  assert.equal(mergeHostsFile("", 1000, [web]), renderHostsBlock(1000, [web]), "an empty (or new) file is the block alone");
  assert.equal(mergeHostsFile(`z\n# BEGIN banger (managed, do not edit) uid=1000\n1.2.3.4 old.vm\n`, 1000, [web]), `z\n${renderHostsBlock(1000, [web])}`);
  // Two copies of the block (two writers at once by hand?) collapse into one.
  const twice = `${renderHostsBlock(1000, [web])}m\n${renderHostsBlock(1000, [db])}`;
  assert.equal(mergeHostsFile(twice, 1000, [web]), `${renderHostsBlock(1000, [web])}m\n`);
});

void test("invalidHostEntries: anchored DNS labels, guest addresses only, no name twice", () => {
  const inNet = (ip: string): boolean => /^172\.16\.90\.([2-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-4])$/.test(ip);
  assert.equal(invalidHostEntries([web, db], inNet), undefined);
  for (const name of ["", "Web", "-web", "web-", "a.b", "web\n1.2.3.4 evil", "we b", "x".repeat(64), "web.vm"]) {
    assert.match(invalidHostEntries([{ name, ip: "172.16.90.2" }], inNet) ?? "", /entries\[0\]\.name: .* is not a VM name/, JSON.stringify(name));
  }
  for (const ip of ["172.16.91.2", "172.16.90.1", "8.8.8.8", "172.16.90.2\n", "x"]) {
    assert.match(invalidHostEntries([web, { name: "db", ip }], inNet) ?? "", /entries\[1\]\.ip: .* is not a guest address/, JSON.stringify(ip));
  }
  assert.match(invalidHostEntries([web, { ...web, ip: "172.16.90.4" }], inNet) ?? "", /appears twice/);
});

void test("chooseHostDns: auto takes resolved when it runs with a fixed port, else the hosts file; explicit modes stay, with the reason they cannot work", () => {
  assert.deepEqual(chooseHostDns("auto", undefined, "127.0.0.1:10053"), { mode: "resolved" });
  assert.deepEqual(chooseHostDns("auto", "systemd-resolved is not running", "127.0.0.1:10053"), { mode: "hosts", reason: "systemd-resolved is not running; using the hosts file" });
  assert.equal(chooseHostDns("auto", undefined, "127.0.0.1:0").mode, "hosts", "resolved cannot route to a port nobody knows");
  assert.deepEqual(chooseHostDns("hosts", undefined, "127.0.0.1:10053"), { mode: "hosts" });
  assert.deepEqual(chooseHostDns("resolved", "systemd-resolved is not running", "127.0.0.1:10053"), { mode: "resolved", reason: "systemd-resolved is not running" });
  assert.equal(chooseHostDns("none", undefined, "127.0.0.1:10053").mode, "none");
});
