import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { test } from "node:test";
import { netdevInNetns, NetdevError } from "../../helpers/netdev-in-netns.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";

const BRIDGE = "bgtbr3";
const TAP = "tap-fc-0000beef";

interface IpLink {
  ifindex: number;
  ifname: string;
  flags: string[];
  master?: string;
  linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> };
}

async function link(ns: NetNs, dev: string): Promise<IpLink> {
  const [l] = JSON.parse(await ns.run(["ip", "-d", "-j", "link", "show", "dev", dev])) as IpLink[];
  assert.ok(l !== undefined, `${dev} exists`);
  return l;
}

async function rejectsWith(p: Promise<unknown>, message: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => e instanceof NetdevError && e.message === message);
}

void test("ioctl LinkOps: bridge state, a tap identical to `ip tuntap add`'s, attached and up; nothing left after delete", { skip: requires(needsRoot(), needsCommands("ip")) }, async (t) => {
  const ns = await createNetNs("bgt-nd");
  t.after(() => ns.destroy());
  const links = netdevInNetns(ns);

  assert.equal(await links.exists(BRIDGE), false);
  assert.equal(await links.bridgeState(BRIDGE), null, "a missing bridge has no state");

  await ns.run(["ip", "link", "add", "name", BRIDGE, "type", "bridge"]);
  const ifindex = (await link(ns, BRIDGE)).ifindex;
  assert.equal(await links.exists(BRIDGE), true);
  assert.deepEqual(await links.bridgeState(BRIDGE), { ifindex, up: false }, "down and unaddressed");
  await ns.run(["ip", "addr", "add", "172.16.93.1/24", "dev", BRIDGE]);
  await ns.run(["ip", "addr", "add", "10.93.0.1/16", "dev", BRIDGE]);
  await ns.run(["ip", "link", "set", BRIDGE, "up"]);
  assert.deepEqual(await links.bridgeState(BRIDGE), { ifindex, up: true, cidr: "172.16.93.1/24" }, "up, with its primary address");

  // The reference: what the helper used to create with `ip`.
  await ns.run(["ip", "tuntap", "add", "dev", "tap-pool-0", "mode", "tap", "user", "4242", "group", "4343"]);
  await ns.run(["ip", "link", "set", "dev", "tap-pool-0", "master", BRIDGE, "up"]);
  const reference = await link(ns, "tap-pool-0");

  await links.createTap(TAP, 4242, 4343);
  const created = await link(ns, TAP);
  assert.equal(created.linkinfo?.info_kind, "tun");
  assert.deepEqual(created.linkinfo.info_data, { type: "tap", pi: false, vnet_hdr: false, multi_queue: false, persist: true, user: 4242, group: 4343 });
  assert.deepEqual(created.linkinfo.info_data, reference.linkinfo?.info_data, "same tun flags, owner and group as `ip tuntap add`");
  assert.equal(created.flags.includes("UP"), false, "not up before attachUp");
  await rejectsWith(links.createTap(TAP, 4242, 4343), `TUNSETIFF ${TAP}: EBUSY`);

  await links.attachUp(TAP, BRIDGE);
  const attached = await link(ns, TAP);
  assert.equal(attached.master, BRIDGE);
  assert.ok(attached.flags.includes("UP"), attached.flags.join(","));
  assert.deepEqual(attached.flags, reference.flags);

  await ns.run(["ip", "tuntap", "add", "dev", "tap-pool-9", "mode", "tap"]);
  await rejectsWith(links.attachUp("tap-pool-9", "nobr0"), "SIOCBRADDIF tap-pool-9 to nobr0: ENODEV");
  await rejectsWith(links.attachUp("tap-pool-8", BRIDGE), "SIOCGIFINDEX tap-pool-8: ENODEV");
  await rejectsWith(links.attachUp("tap-pool-9", "lo"), "SIOCBRADDIF tap-pool-9 to lo: EOPNOTSUPP");

  for (const dev of [TAP, "tap-pool-0", "tap-pool-9"]) await ns.run(["ip", "link", "del", dev]);
  assert.equal(await links.exists(TAP), false);
  const left = (JSON.parse(await ns.run(["ip", "-j", "link", "show"])) as IpLink[]).map((l) => l.ifname).sort();
  assert.deepEqual(left, [BRIDGE, "lo"].sort());
  // This process's /sys is the host's: the namespace's links never showed up there.
  for (const dev of [BRIDGE, TAP, "tap-pool-9"]) assert.equal(existsSync(`/sys/class/net/${dev}`), false, `${dev} is not on the host`);
});
