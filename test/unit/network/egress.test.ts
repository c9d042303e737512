import assert from "node:assert/strict";
import { test } from "node:test";
import dnsPacket from "dns-packet";
import { addressesIn, clampTtl, LEARN_TTL_MAX_S, LEARN_TTL_MIN_S } from "../../../src/daemon/egress/learn.js";
import { domainAllowed, formatEgress, parseEgress } from "../../../src/model/egress.js";
import { EgressManager, guestsOf } from "../../../src/roothelper/egress/manager.js";
import { nftEgressCreateScript, nftEgressGuestScript, nftEgressLearnScript, parseNftEgress } from "../../../src/roothelper/egress/nftables.js";
import type { EgressBackend, EgressGuest, EgressRuleset } from "../../../src/roothelper/egress/types.js";
import { RpcError } from "../../../src/rpc/errors.js";

void test("--egress LIST: CIDRs, addresses and domains; bad entries say what is wrong", () => {
  assert.deepEqual(parseEgress("all"), { mode: "all" });
  assert.deepEqual(parseEgress("none"), { mode: "none" });
  assert.deepEqual(parseEgress("allow=10.0.0.0/8,192.0.2.7,Deb.Debian.org.,10.0.0.0/8"), { mode: "allow", cidrs: ["10.0.0.0/8", "192.0.2.7/32"], domains: ["deb.debian.org"] });
  assert.equal(formatEgress({ mode: "allow", cidrs: ["10.0.0.0/8", "192.0.2.7/32"], domains: ["deb.debian.org"] }), "allow=10.0.0.0/8,192.0.2.7,deb.debian.org");
  const bad: [string, RegExp][] = [
    ["some", /is not an egress policy; want all, none or allow=LIST/],
    ["allow=", /empty entry/],
    ["allow=a.com,,b.com", /empty entry/],
    ["allow=10.1.2.3/8", /bits set beyond its \/8 prefix; did you mean 10\.0\.0\.0\/8\?/],
    ["allow=10.0.0.256", /not an IPv4 address or CIDR/],
    ["allow=10.0.0.0/33", /not an IPv4 address or CIDR/],
    ["allow=*.example.com", /without "\*\."/],
    ["allow=localhost", /neither an IPv4 address, a CIDR nor a domain name/],
    ["allow=exa mple.com", /neither/],
    ["allow=example.com;rm -rf", /neither/],
    ["allow=-bad.com", /neither/],
    ["allow=example.com\"", /neither/],
    [`allow=${Array.from({ length: 65 }, (_, i) => `h${i}.example.com`).join(",")}`, /at most 64/],
    ["ALL", /is not an egress policy/],
  ];
  for (const [text, re] of bad) {
    const r = parseEgress(text);
    assert.ok("error" in r, `${JSON.stringify(text)} must be refused`);
    assert.match(r.error, re);
  }
});

void test("a domain allows itself and names under it, on label boundaries only", () => {
  assert.ok(domainAllowed(["example.com"], "example.com"));
  assert.ok(domainAllowed(["example.com"], "API.example.com."));
  assert.ok(!domainAllowed(["example.com"], "badexample.com"));
  assert.ok(!domainAllowed(["example.com"], "example.com.evil.org"));
  assert.ok(!domainAllowed([], "example.com"));
});

void test("learned addresses: every A record of an answer, TTLs clamped; garbage gives none", () => {
  const reply = dnsPacket.encode({ type: "response", id: 1, flags: dnsPacket.RECURSION_AVAILABLE, questions: [{ type: "A", name: "www.example.com", class: "IN" }], answers: [
    { type: "CNAME", class: "IN", name: "www.example.com", ttl: 300, data: "edge.cdn.net" },
    { type: "A", class: "IN", name: "edge.cdn.net", ttl: 5, data: "198.51.100.7" },
    { type: "A", class: "IN", name: "edge.cdn.net", ttl: 86_400, data: "198.51.100.8" },
    { type: "AAAA", class: "IN", name: "edge.cdn.net", ttl: 60, data: "2001:db8::1" },
  ] });
  assert.deepEqual(addressesIn(reply), [{ ip: "198.51.100.7", ttlS: LEARN_TTL_MIN_S }, { ip: "198.51.100.8", ttlS: LEARN_TTL_MAX_S }]);
  assert.deepEqual(addressesIn(Buffer.from("garbage")), []);
  assert.equal(clampTtl(600), 600);
  assert.equal(clampTtl(Number.NaN), LEARN_TTL_MIN_S);
});

const host = { bridge: "banger0", gateway: "172.16.90.1", dnsPort: 10053, protectHost: true };
const g = (over: Partial<EgressGuest> = {}): EgressGuest => ({ ip: "172.16.90.2", tap: "tap-fc-00000002", mode: "allow", cidrs: ["10.0.0.0/8"], isolate: false, ...over });

void test("nft scripts: defaults for every guest, the policy chain, the host guard and the bridge tables", () => {
  const create = nftEgressCreateScript(host);
  assert.match(create, /add rule inet banger_egress forward iifname "banger0" ip daddr 169\.254\.0\.0\/16 counter drop/);
  assert.match(create, /add rule inet banger_egress input iifname "banger0" ip daddr 172\.16\.90\.1 meta l4proto \{ tcp, udp \} th dport 10053 accept/);
  assert.match(create, /th dport 53 counter drop/);
  assert.match(create, /add rule bridge banger_egress prerouting iifname @ports ether type ip iifname \. ip saddr != @bound counter drop/);
  assert.doesNotMatch(nftEgressCreateScript({ ...host, protectHost: false }), /hook input/);
  assert.doesNotMatch(nftEgressCreateScript({ ...host, dnsPort: undefined }), /dport 10053/);
  assert.equal(nftEgressGuestScript(undefined, "172.16.90.2", g({ isolate: true }), false), [
    `add element inet banger_egress guests { 172.16.90.2 comment "tap-fc-00000002 allow" }`,
    "add element inet banger_egress policed { 172.16.90.2 }",
    "add element inet banger_egress allow { 172.16.90.2 . 10.0.0.0/8 }",
    `add element bridge banger_egress ports { "tap-fc-00000002" }`,
    `add element bridge banger_egress bound { "tap-fc-00000002" . 172.16.90.2 }`,
    `add element bridge banger_egress isolated { "tap-fc-00000002" }`,
  ].map((l) => `${l}\n`).join(""));
  const cur: EgressRuleset = { guests: [{ ip: "172.16.90.2", tap: "tap-fc-00000002", mode: "allow" }, { ip: "172.16.90.3", tap: "tap-fc-00000003", mode: "all" }], policed: ["172.16.90.2"], allow: [["172.16.90.2", "10.0.0.0/8"]], learned: [["172.16.90.2", "198.51.100.7"]], ports: ["tap-fc-00000002", "tap-fc-00000003"], bound: [["tap-fc-00000002", "172.16.90.2"], ["tap-fc-00000003", "172.16.90.3"]], isolated: [] };
  const removal = nftEgressGuestScript(cur, "172.16.90.2", undefined, true);
  assert.match(removal, /delete element inet banger_egress learned \{ 172\.16\.90\.2 \. 198\.51\.100\.7 \}/);
  assert.doesNotMatch(removal, /172\.16\.90\.3|tap-fc-00000003/, "another guest's elements are not touched");
  assert.doesNotMatch(nftEgressGuestScript(cur, "172.16.90.2", g(), false), /learned/, "a re-apply keeps what DNS taught the guest");
  assert.match(nftEgressGuestScript(cur, "172.16.90.2", g({ mode: "none", cidrs: [] }), false), /delete element inet banger_egress learned/, "leaving allow= forgets learned addresses");
  assert.equal(nftEgressLearnScript("172.16.90.2", [{ ip: "198.51.100.7", ttlS: 60 }]), [
    "add element inet banger_egress learned { 172.16.90.2 . 198.51.100.7 }",
    "delete element inet banger_egress learned { 172.16.90.2 . 198.51.100.7 }",
    "add element inet banger_egress learned { 172.16.90.2 . 198.51.100.7 timeout 60s }",
  ].map((l) => `${l}\n`).join(""));
});

void test("nft listing: what nft 1.0.6 prints for both tables parses back into guests", () => {
  const inet = `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "banger_egress"}}, {"set": {"family": "inet", "name": "guests", "table": "banger_egress", "type": "ipv4_addr", "elem": [{"elem": {"val": "172.16.90.2", "comment": "tap-fc-00000002 allow"}}, {"elem": {"val": "172.16.90.3", "comment": "tap-fc-00000003 all"}}]}}, {"set": {"family": "inet", "name": "policed", "table": "banger_egress", "type": "ipv4_addr", "elem": ["172.16.90.2"]}}, {"set": {"family": "inet", "name": "allow", "table": "banger_egress", "type": ["ipv4_addr", "ipv4_addr"], "flags": ["interval"], "elem": [{"elem": {"val": {"concat": ["172.16.90.2", {"prefix": {"addr": "10.0.0.0", "len": 8}}]}}}, {"concat": ["172.16.90.2", "192.0.2.7"]}]}}, {"set": {"family": "inet", "name": "learned", "table": "banger_egress", "type": ["ipv4_addr", "ipv4_addr"], "flags": ["timeout"], "elem": [{"elem": {"val": {"concat": ["172.16.90.2", "198.51.100.7"]}, "timeout": 90, "expires": 89}}]}}]}`;
  const bridge = `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"set": {"family": "bridge", "name": "isolated", "table": "banger_egress", "type": "ifname", "elem": ["tap-fc-00000003"]}}, {"set": {"family": "bridge", "name": "ports", "table": "banger_egress", "type": "ifname", "elem": ["tap-fc-00000002", "tap-fc-00000003"]}}, {"set": {"family": "bridge", "name": "bound", "table": "banger_egress", "type": ["ifname", "ipv4_addr"], "elem": [{"concat": ["tap-fc-00000002", "172.16.90.2"]}]}}]}`;
  const r = parseNftEgress(inet, bridge);
  assert.deepEqual(r.allow, [["172.16.90.2", "10.0.0.0/8"], ["172.16.90.2", "192.0.2.7/32"]]);
  assert.deepEqual(r.bound, [["tap-fc-00000002", "172.16.90.2"]]);
  assert.deepEqual(guestsOf(r), [
    { ip: "172.16.90.2", tap: "tap-fc-00000002", mode: "allow", cidrs: ["10.0.0.0/8", "192.0.2.7/32"], isolate: false, learned: 1 },
    { ip: "172.16.90.3", tap: "tap-fc-00000003", mode: "all", cidrs: [], isolate: true, learned: 0 },
  ]);
});

/** A backend over an in-memory ruleset, recording each change. */
function fakeBackend(): EgressBackend & { state: EgressRuleset | undefined; changes: string[] } {
  const b = {
    kind: "nftables" as const,
    state: undefined as EgressRuleset | undefined,
    changes: [] as string[],
    read: () => Promise.resolve(b.state),
    replaceGuest: (_h: unknown, cur: EgressRuleset | undefined, ip: string, wanted: EgressGuest | undefined) => {
      b.changes.push(`${cur === undefined ? "create " : ""}${wanted === undefined ? "-" : "+"}${ip}`);
      const base = cur ?? { guests: [], policed: [], allow: [], learned: [], ports: [], bound: [], isolated: [] };
      const guests = [...base.guests.filter((x) => x.ip !== ip), ...(wanted === undefined ? [] : [{ ip, tap: wanted.tap, mode: wanted.mode }])];
      b.state = { ...base, guests, policed: guests.filter((x) => x.mode !== "all").map((x) => x.ip) };
      return Promise.resolve();
    },
    learn: (ip: string) => { b.changes.push(`learn ${ip}`); return Promise.resolve(); },
    removeAll: () => { b.changes.push("drop"); b.state = undefined; return Promise.resolve(); },
  };
  return b;
}

void test("manager: tables come with the first guest and go with the last; learning only for allow= guests", async () => {
  const b = fakeBackend();
  const m = new EgressManager(b, host);
  assert.equal(await m.set("172.16.90.2", g(), false), 1);
  assert.equal(await m.set("172.16.90.3", g({ ip: "172.16.90.3", tap: "tap-fc-00000003", mode: "none", cidrs: [] }), false), 2);
  assert.equal(await m.learn("172.16.90.2", [{ ip: "198.51.100.7", ttlS: 60 }]), 1);
  await assert.rejects(m.learn("172.16.90.3", [{ ip: "198.51.100.7", ttlS: 60 }]), (e: unknown) => e instanceof RpcError && /not registered with an allow policy \(mode none\)/.test(e.message));
  await assert.rejects(m.learn("172.16.90.9", [{ ip: "198.51.100.7", ttlS: 60 }]), /not registered/);
  assert.equal(await m.set("172.16.90.2", undefined, true), 1);
  assert.equal(await m.set("172.16.90.2", undefined, true), 1, "removing again is a no-op");
  assert.equal(await m.set("172.16.90.3", undefined, true), 0);
  assert.equal(await m.set("172.16.90.3", undefined, true), 0);
  assert.deepEqual(b.changes, ["create +172.16.90.2", "+172.16.90.3", "learn 172.16.90.2", "-172.16.90.2", "drop", "drop"]);
  assert.equal(b.state, undefined);
});
