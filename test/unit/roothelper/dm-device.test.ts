import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { test } from "node:test";
import { notOwnSnapshot } from "../../../src/roothelper/fs/dm-device.js";

// No device-mapper on the development machine: the sysfs view of dm devices and loops is faked under a temp dir.

void test("own snapshot: a dm target of that name stacked only on loops backed by files in the state dir", async (t) => {
  const sys = await mkdtemp("/tmp/bgt-disk-sys-");
  t.after(() => rm(sys, { recursive: true, force: true }));
  const name = "fc-rootfs-0123456789abcdef0123456789abcdef";
  // dm devices as sysfs shows them: /sys/dev/block/MAJ:MIN/{dm/name,slaves/*}, loops' backing files under /sys/block.
  const dm = async (minor: number, dmName: string, slaves: Record<string, string | undefined>): Promise<number> => {
    const dev = `${sys}/dev/block/254:${minor}`;
    await mkdir(`${dev}/dm`, { recursive: true });
    await mkdir(`${dev}/slaves`, { recursive: true });
    await writeFile(`${dev}/dm/name`, dmName + "\n");
    for (const [slave, file] of Object.entries(slaves)) {
      await mkdir(`${dev}/slaves/${slave}`);
      if (file === undefined) continue;
      await mkdir(`${sys}/block/${slave}/loop`, { recursive: true });
      await writeFile(`${sys}/block/${slave}/loop/backing_file`, file + "\n");
    }
    return (254 << 8) | (minor & 0xff) | ((minor & ~0xff) << 12);
  };
  const ours = await dm(0, name, { loop7: "/state/images/default/rootfs.ext4", loop8: "/state/vms/x/root.cow (deleted)" });
  assert.equal(notOwnSnapshot(ours, name, "/state", sys), undefined);
  // A large minor is encoded in the high bits of dev_t.
  const high = await dm(300, name, { loop17: "/state/images/default/rootfs.ext4" });
  assert.equal(notOwnSnapshot(high, name, "/state", sys), undefined);
  assert.match(notOwnSnapshot(ours, "fc-rootfs-ffffffffffffffffffffffffffffffff", "/state", sys) ?? "", /is dm target fc-rootfs-0123/);
  // Another owner's snapshot: its loops are backed by files in another state dir (a prefix match is not enough).
  assert.match(notOwnSnapshot(ours, name, "/sta", sys) ?? "", /not by a file in \/sta$/);
  const foreign = await dm(1, name, { loop9: "/home/other/.local/state/banger/vms/y/root.cow" });
  assert.match(notOwnSnapshot(foreign, name, "/state", sys) ?? "", /backed by \/home\/other/);
  const onDisk = await dm(2, name, { sda2: undefined });
  assert.match(notOwnSnapshot(onDisk, name, "/state", sys) ?? "", /stacked on sda2, not only on loop devices/);
  const detached = await dm(3, name, { loop3: undefined });
  assert.match(notOwnSnapshot(detached, name, "/state", sys) ?? "", /backed by nothing/);
  assert.match(notOwnSnapshot(await dm(4, name, {}), name, "/state", sys) ?? "", /no underlying devices/);
  assert.match(notOwnSnapshot((8 << 8) | 1, name, "/state", sys) ?? "", /not a device-mapper device/);
});
