import assert from "node:assert/strict";
import { test } from "node:test";
import { chooseSubnet, pickBridgeSubnet } from "../../../src/install/subnet.js";
import { FakeRunner } from "../../../src/system/runner.js";

const lo = { ifname: "lo", addr_info: [{ family: "inet", local: "127.0.0.1", prefixlen: 8 }] };

void test("subnet: the historical 172.16.90.0/24 when free; the default route says nothing", () => {
  assert.equal(chooseSubnet([{ dst: "default", dev: "eth0" }, { dst: "192.0.2.0/24", dev: "eth0" }], [lo], "banger0"), "172.16.90.0/24");
});

void test("subnet: a /24 routed or addressed elsewhere is skipped, also when a wider route covers it", () => {
  assert.equal(chooseSubnet([{ dst: "172.16.90.0/24", dev: "docker0" }], [lo], "banger0"), "172.16.91.0/24");
  assert.equal(chooseSubnet([], [lo, { ifname: "wg0", addr_info: [{ family: "inet", local: "172.16.90.7", prefixlen: 23 }] }], "banger0"), "172.16.92.0/24");
  assert.equal(chooseSubnet([{ dst: "172.16.0.0/12", dev: "vpn0" }], [lo], "banger0"), "10.90.0.0/24");
  assert.equal(chooseSubnet([{ dst: "172.16.90.0/23", dev: "vpn0" }], [lo], "banger0"), "172.16.92.0/24");
  assert.equal(chooseSubnet([{ dst: "172.16.90.5", dev: "tun0" }], [lo], "banger0"), "172.16.91.0/24", "a host route counts");
  assert.equal(chooseSubnet([{ dst: "172.16.0.0/12", dev: "a" }, { dst: "10.0.0.0/8", dev: "b" }, { dst: "192.168.0.0/16", dev: "c" }], [lo], "banger0"), undefined);
});

void test("subnet: the install's own bridge (a re-install) does not count as taken", () => {
  assert.equal(chooseSubnet([{ dst: "172.16.90.0/24", dev: "banger0" }], [{ ifname: "banger0", addr_info: [{ family: "inet", local: "172.16.90.1", prefixlen: 24 }] }], "banger0"), "172.16.90.0/24");
});

void test("subnet: read from `ip -j` (all tables); nothing free is an error saying to set network.cidr", async () => {
  const runner = new FakeRunner((argv) => argv.includes("route") ? { stdout: Buffer.from(JSON.stringify([{ dst: "172.16.90.0/24", dev: "x" }])) } : { stdout: Buffer.from(JSON.stringify([lo])) });
  assert.equal(await pickBridgeSubnet(runner, "banger0"), "172.16.91.0/24");
  assert.deepEqual(runner.argvs(), [["ip", "-j", "-4", "route", "show", "table", "all"], ["ip", "-j", "-4", "addr", "show"]]);
  const full = new FakeRunner((argv) => ({ stdout: Buffer.from(argv.includes("route") ? JSON.stringify([{ dst: "0.0.0.0/1", dev: "a" }, { dst: "128.0.0.0/1", dev: "b" }]) : "[]") }));
  await assert.rejects(pickBridgeSubnet(full, "banger0"), /network\.cidr/);
});
