import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { configSchema } from "../../../src/config/schema.js";
import { networkInfoContributor } from "../../../src/daemon/network/info.js";
import { forwardUpstreams, parseNameservers, upstreamDns } from "../../../src/daemon/network/upstream-dns.js";
import { bridgeIp, cidrContains, guestRange, intToIpv4, ipv4ToInt, parseCidr } from "../../../src/model/ipv4.js";
import { guestRules, parseFwdChain } from "../../../src/roothelper/nat/iptables.js";
import { nftCreateScript, parseNftState } from "../../../src/roothelper/nat/nftables.js";

void test("ipv4/CIDR arithmetic", () => {
  assert.equal(ipv4ToInt("172.16.90.1"), 0xac105a01);
  assert.equal(intToIpv4(0xac105a01), "172.16.90.1");
  assert.deepEqual(parseCidr("172.16.90.77/24"), { network: 0xac105a00, prefix: 24, size: 256 });
  assert.equal(bridgeIp("10.20.0.0/16"), "10.20.0.1");
  assert.deepEqual(guestRange("10.1.2.0/29"), { first: ipv4ToInt("10.1.2.2"), last: ipv4ToInt("10.1.2.6") });
  assert.equal(cidrContains("10.1.2.0/29", "10.1.2.7"), true);
  assert.equal(cidrContains("10.1.2.0/29", "10.1.2.8"), false);
  for (const bad of ["10.0.0.0", "10.0.0.0/31", "10.0.0.0/7", "10.0.0.0/24/1", "10.0.0/24", "x/24"]) assert.throws(() => parseCidr(bad));
});

void test("upstream DNS for guests: config, then non-loopback resolv.conf servers, then systemd-resolved's upstream list, else none with a warning", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-net-dns-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const resolvConf = join(dir, "resolv.conf");
  const resolvedConf = join(dir, "resolved.conf");
  assert.deepEqual(parseNameservers("# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nnameserver fe80::1\nnameserver 10.0.0.2\nsearch x\n nameserver 192.168.1.1 \n"), ["10.0.0.2", "192.168.1.1"]);
  assert.deepEqual(upstreamDns(["9.9.9.9"], { resolvConf, resolvedConf }), { servers: ["9.9.9.9"], source: "config" });
  writeFileSync(resolvConf, "nameserver 10.255.255.53\n");
  assert.deepEqual(upstreamDns(undefined, { resolvConf, resolvedConf }), { servers: ["10.255.255.53"], source: "resolv.conf" });
  writeFileSync(resolvConf, "nameserver 127.0.0.53\noptions edns0\n");
  writeFileSync(resolvedConf, "nameserver 192.0.2.10\nnameserver 192.0.2.11\n");
  assert.deepEqual(upstreamDns([], { resolvConf, resolvedConf }), { servers: ["192.0.2.10", "192.0.2.11"], source: "systemd-resolved" });
  rmSync(resolvedConf);
  const none = upstreamDns(undefined, { resolvConf, resolvedConf });
  assert.deepEqual(none.servers, []);
  assert.equal(none.source, "none");
  assert.match(none.warning ?? "", /set network\.upstream_dns/);
});

void test("nft script: one table, set-keyed rules, marker only when banger owns ip_forward", () => {
  const s = nftCreateScript("banger0", false, { ip: "172.16.90.2", tap: "tap-fc-00000001" });
  assert.equal(s.split("\n").filter((l) => l.startsWith("add table")).length, 1);
  assert.doesNotMatch(s, /ip_forward_set_by_banger/);
  assert.doesNotMatch(s, /flush|delete/, "creation never removes anything of anyone else");
  assert.match(nftCreateScript("banger0", true, { ip: "172.16.90.2", tap: "tap-fc-00000001" }), /add chain ip banger ip_forward_set_by_banger/);
  const st = parseNftState(JSON.stringify({ nftables: [{ metainfo: {} }, { set: { name: "guests", elem: [{ elem: { val: "172.16.90.2", comment: "tap-fc-00000001" } }, "172.16.90.3"] } }, { chain: { name: "ip_forward_set_by_banger" } }] }));
  assert.deepEqual(st, { guests: [{ ip: "172.16.90.2", tap: "tap-fc-00000001" }, { ip: "172.16.90.3", tap: "" }], ipForwardOwned: true });
  assert.deepEqual(parseNftState(JSON.stringify({ nftables: [{ set: { name: "guests" } }] })), { guests: [], ipForwardOwned: false });
});

void test("iptables fallback: rules only in banger's chains, parsed back from iptables -S", () => {
  const rules = guestRules("banger0", { ip: "172.16.90.2", tap: "tap-fc-00000001" });
  for (const r of rules) assert.ok(r.includes("BANGER-FWD") || r.includes("BANGER-POST"), r.join(" "));
  assert.deepEqual(rules[2], ["-t", "nat", "-I", "BANGER-POST", "1", "-s", "172.16.90.2/32", "!", "-o", "banger0", "-m", "comment", "--comment", "tap-fc-00000001", "-j", "MASQUERADE"]);
  const text = [
    "-N BANGER-FWD",
    "-A BANGER-FWD -d 172.16.90.2/32 -o banger0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment tap-fc-00000001 -j ACCEPT",
    "-A BANGER-FWD -s 172.16.90.2/32 -i banger0 -m comment --comment tap-fc-00000001 -j ACCEPT",
    "-A BANGER-FWD -m comment --comment banger-ip-forward-owned -j RETURN",
  ].join("\n");
  assert.deepEqual(parseFwdChain(text), { guests: [{ ip: "172.16.90.2", tap: "tap-fc-00000001" }], ipForwardOwned: true });
});

void test("system.info contributor reports network and dns.address", async () => {
  const config = configSchema.parse({ network: { bridge: "br-x", cidr: "10.7.0.0/24", dns_listen: "127.0.0.1:5353" } });
  assert.deepEqual(await networkInfoContributor(config)("op-test0001"), { network: { bridge: "br-x", cidr: "10.7.0.0/24", bridge_ip: "10.7.0.1" }, dns: { address: "127.0.0.1:5353" } });
  assert.deepEqual((await networkInfoContributor(config, () => "127.0.0.1:40000")("op-test0001")).dns, { address: "127.0.0.1:40000" });
});

void test("guests' DNS: their port 53 on the bridge address is redirected to banger's port, in banger's own table/chains only", () => {
  const dns = { gateway: "172.16.90.1", port: 10053 };
  const s = nftCreateScript("banger0", false, { ip: "172.16.90.2", tap: "tap-fc-00000001" }, dns);
  assert.match(s, /^add chain ip banger prerouting \{ type nat hook prerouting priority dstnat; policy accept; \}$/m);
  assert.match(s, /^add rule ip banger prerouting iifname "banger0" ip saddr @guests ip daddr 172\.16\.90\.1 meta l4proto \{ tcp, udp \} th dport 53 counter redirect to :10053$/m);
  assert.doesNotMatch(nftCreateScript("banger0", false, { ip: "172.16.90.2", tap: "tap-fc-00000001" }), /prerouting/, "no redirect without a fixed port");
  const rules = guestRules("banger0", { ip: "172.16.90.2", tap: "tap-fc-00000001" }, dns);
  assert.deepEqual(rules.slice(3), ["udp", "tcp"].map((p) => ["-t", "nat", "-I", "BANGER-PRE", "1", "-s", "172.16.90.2/32", "-i", "banger0", "-d", "172.16.90.1/32", "-p", p, "--dport", "53", "-m", "comment", "--comment", "tap-fc-00000001", "-j", "REDIRECT", "--to-ports", "10053"]));
  assert.equal(guestRules("banger0", { ip: "172.16.90.2", tap: "tap-fc-00000001" }).length, 3);
});

void test("forwardUpstreams: configured servers, else the host's resolvers with loopback stubs kept, else systemd-resolved's list; port 53", () => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-fwd-"));
  try {
    const resolvConf = join(dir, "resolv.conf");
    const resolvedConf = join(dir, "resolved.conf");
    writeFileSync(resolvConf, "nameserver 127.0.0.53\noptions edns0\n");
    writeFileSync(resolvedConf, "nameserver 192.0.2.10\n");
    assert.deepEqual(forwardUpstreams(["9.9.9.9"], { resolvConf, resolvedConf }), [{ host: "9.9.9.9", port: 53 }]);
    assert.deepEqual(forwardUpstreams(undefined, { resolvConf, resolvedConf }), [{ host: "127.0.0.53", port: 53 }], "the daemon on the host can use the stub");
    writeFileSync(resolvConf, "# nothing\n");
    assert.deepEqual(forwardUpstreams([], { resolvConf, resolvedConf }), [{ host: "192.0.2.10", port: 53 }]);
    rmSync(resolvedConf);
    assert.deepEqual(forwardUpstreams(undefined, { resolvConf, resolvedConf }), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
