import assert from "node:assert/strict";
import { test } from "node:test";
import { ownerParserRunner } from "../../../src/roothelper/owner-parsers.js";
import { FakeRunner } from "../../../src/system/runner.js";
import { testExecutable } from "../../helpers/test-executable.js";

const BINS = { setpriv: testExecutable("/usr/bin/setpriv"), debugfs: testExecutable("/usr/sbin/debugfs"), e2fsck: testExecutable("/usr/sbin/e2fsck") };
const OWNER = { uid: 1234, gid: 2345 };

void test("parsers run as the owner through the trusted setpriv: uid, gid, no groups, no capabilities, no_new_privs, a clean env", async () => {
  const r = new FakeRunner();
  const parsers = ownerParserRunner(r, BINS, OWNER);
  await parsers.run(["e2fsck", "-fy", "/proc/self/fd/3"], { extraFds: [7], okExitCodes: [1], env: { E2FSCK_CONFIG: "/home/owner/evil.conf" } });
  assert.deepEqual(r.calls[0]?.argv, ["/usr/bin/setpriv", "--reuid=1234", "--regid=2345", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--", "/usr/sbin/e2fsck", "-fy", "/proc/self/fd/3"]);
  assert.deepEqual(r.calls[0]?.extraFds, [7], "the image reaches the parser as an inherited fd");
  assert.equal(r.calls[0]?.execAt?.name, "setpriv", "setpriv, still root when it starts, is executed through its checked directory");
  assert.deepEqual(r.calls[0]?.env, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" });
  await parsers.run(["debugfs", "-w", "-f", "-", "/proc/self/fd/3"]);
  assert.equal(r.calls[1]?.argv[8], "/usr/sbin/debugfs");
});

void test("anything but a parser is refused; a missing setpriv or parser is an error saying what to install, never a fallback to root", async () => {
  const r = new FakeRunner();
  await assert.rejects(ownerParserRunner(r, BINS, OWNER).run(["losetup", "--find"]), /losetup is not a parser/);
  await assert.rejects(ownerParserRunner(r, BINS, OWNER).run([]), /undefined is not a parser/);
  await assert.rejects(ownerParserRunner(r, { ...BINS, setpriv: undefined }, OWNER).run(["debugfs", "-R", "stats", "/proc/self/fd/3"]), /setpriv \(util-linux\) was not found.*install util-linux or set tools\.setpriv_bin/);
  await assert.rejects(ownerParserRunner(r, { ...BINS, e2fsck: undefined }, OWNER).run(["e2fsck", "-fy", "/proc/self/fd/3"]), /install e2fsprogs or set tools\.e2fsck_bin/);
  assert.deepEqual(r.calls, [], "nothing ran");
});
