import assert from "node:assert/strict";
import { test } from "node:test";
import { privCreateTap, privDeleteTap, privEnsureBridge, privEnsureNat, privNetworkStatus, privRemoveNatAll, privTeardownNetwork } from "../../../src/rpc/priv/network.js";
import { RpcError } from "../../../src/rpc/errors.js";
import { createNetNs, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startHelperInNetns } from "../../helpers/helper-in-netns.js";

const OWNER = { uid: 4242, gid: 4343 };
const CFG = (backend: string): string => `[network]\nbridge = "bgtbr0"\ncidr = "172.16.91.0/24"\nnat_backend = "${backend}"\n`;

/** `ip -o link` minus volatile counters: what must be identical before and after. */
async function links(ns: NetNs): Promise<string> {
  return ns.run(["ip", "-o", "link", "show"]);
}

async function iptablesSave(ns: NetNs): Promise<string> {
  const out = await ns.run(["iptables-save"]);
  // Header/footer comments carry timestamps; [packets:bytes] counters move with traffic.
  return out.split("\n").filter((l) => !l.startsWith("#")).map((l) => l.replace(/\[\d+:\d+\]/g, "")).join("\n");
}

async function ipForward(ns: NetNs): Promise<string> {
  return ns.run(["cat", "/proc/sys/net/ipv4/ip_forward"]);
}

for (const [backend, forwarding] of [["nftables", "0"], ["iptables", "0"], ["nftables", "1"]] as const) {
  // banger switches forwarding on for its guests and back off after the last one only if it was off;
  // a host that already forwards (a router, docker, an earlier quickstart) keeps it on.
  const owned = forwarding === "0";
  void test(`${backend}, ip_forward=${forwarding} before: bridge + owner-owned taps with the configured CIDR; NAT present while enabled, gone after; ip link / ruleset / forwarding identical before and after`, { skip: requires(needsRoot(), needsCommands("ip", "nft", "iptables-save")) }, async (t) => {
    const ns = await createNetNs("bgt-net");
    t.after(() => ns.destroy());
    await ns.sysctl("net.ipv4.ip_forward", forwarding);
    if (backend === "iptables") {
      // iptables-nft creates builtin tables/chains lazily on first use and (rightly) nobody deletes them. A real
      // host running iptables already has them; make this namespace look like one before the snapshot.
      for (const [table, chain] of [["filter", "FORWARD"], ["nat", "POSTROUTING"], ["nat", "PREROUTING"]] as const) {
        await ns.run(["iptables", "-w", "-t", table, "-A", chain, "-s", "192.0.2.1/32", "-j", "ACCEPT"]);
        await ns.run(["iptables", "-w", "-t", table, "-D", chain, "-s", "192.0.2.1/32", "-j", "ACCEPT"]);
      }
    }
    const linksBefore = await links(ns);
    const nftBefore = await ns.run(["nft", "list", "ruleset"]);
    const iptBefore = await iptablesSave(ns);
    assert.equal(await ipForward(ns), forwarding);

    const helper = await startHelperInNetns(ns, OWNER, CFG(backend));
    t.after(() => helper.stop());

    // The request may repeat the configured values but never change them.
    await assert.rejects(helper.call(privEnsureBridge, { cidr: "10.0.0.0/24" }), (e: unknown) => e instanceof RpcError && e.code === "bad_params");
    // `resolver` reports on the host's systemd-resolved, which this namespace's bridge is not part of.
    const { resolver, ...bridge } = await helper.call(privEnsureBridge, {});
    assert.deepEqual(bridge, { bridge: "bgtbr0", cidr: "172.16.91.0/24", bridge_ip: "172.16.91.1", created: true });
    assert.equal(typeof resolver.applied, "boolean");
    assert.equal((await helper.call(privEnsureBridge, {})).created, false, "idempotent");
    assert.match(await ns.run(["ip", "-4", "-o", "addr", "show", "dev", "bgtbr0"]), /inet 172\.16\.91\.1\/24 /);

    for (const tap of ["tap-fc-0000aaaa", "tap-pool-0"]) {
      await helper.call(privCreateTap, { tap_name: tap });
      assert.equal(await ns.run(["cat", `/sys/class/net/${tap}/owner`]), String(OWNER.uid), `${tap} owner uid`);
      assert.equal(await ns.run(["cat", `/sys/class/net/${tap}/group`]), String(OWNER.gid), `${tap} group`);
      assert.match(await ns.run(["ip", "-o", "link", "show", "dev", tap]), /master bgtbr0 /);
    }
    // Injection attempts reach validation, not the kernel.
    await assert.rejects(helper.call(privCreateTap, { tap_name: "tap-fc-0000aaaa master lo" }), (e: unknown) => e instanceof RpcError && e.code === "bad_params");
    await assert.rejects(helper.call(privEnsureNat, { guest_ip: "172.16.91.2 } ; delete table ip filter ; {", tap: "tap-fc-0000aaaa", enable: true }), (e: unknown) => e instanceof RpcError && e.code === "bad_params");

    assert.equal((await helper.call(privEnsureNat, { guest_ip: "172.16.91.2", tap: "tap-fc-0000aaaa", enable: true })).backend, backend);
    await helper.call(privEnsureNat, { guest_ip: "172.16.91.3", tap: "tap-pool-0", enable: true });
    assert.equal(await ipForward(ns), "1", "forwarding on while guests are NATed");
    if (backend === "nftables") {
      const table = await ns.run(["nft", "list", "table", "ip", "banger"]);
      assert.match(table, /172\.16\.91\.2 comment "tap-fc-0000aaaa"/);
      assert.match(table, /172\.16\.91\.3 comment "tap-pool-0"/);
      assert.match(table, /masquerade/);
      assert.match(table, /iifname "bgtbr0" ip saddr @guests ip daddr 172\.16\.91\.1 meta l4proto \{ tcp, udp \} th dport 53 counter packets \d+ bytes \d+ redirect to :10053/, "guests' DNS to the daemon's port");
    } else {
      const save = await iptablesSave(ns);
      assert.match(save, /-A POSTROUTING -j BANGER-POST/);
      assert.match(save, /-A FORWARD -j BANGER-FWD/);
      assert.match(save, /-A BANGER-POST -s 172\.16\.91\.2\/32 ! -o bgtbr0 .*--comment tap-fc-0000aaaa -j MASQUERADE/);
      assert.match(save, /-A BANGER-POST -s 172\.16\.91\.3\/32 ! -o bgtbr0 .*-j MASQUERADE/);
      assert.match(save, /-A PREROUTING -j BANGER-PRE/);
      for (const proto of ["udp", "tcp"]) assert.match(save, new RegExp(`-A BANGER-PRE -s 172\\.16\\.91\\.2/32 -d 172\\.16\\.91\\.1/32 -i bgtbr0 -p ${proto} -m ${proto} --dport 53 .*--comment tap-fc-0000aaaa -j REDIRECT --to-ports 10053`));
    }
    const status = await helper.call(privNetworkStatus, {});
    assert.deepEqual(status.taps, ["tap-fc-0000aaaa", "tap-pool-0"]);
    assert.deepEqual(status.nat, { backend, guests: [{ ip: "172.16.91.3", tap: "tap-pool-0" }, { ip: "172.16.91.2", tap: "tap-fc-0000aaaa" }].sort((a, b) => (backend === "nftables" ? a.ip.localeCompare(b.ip) : b.ip.localeCompare(a.ip))), ip_forward_enabled_by_banger: owned });

    // "Delete" the first VM: its rules go, the other's stay.
    await helper.call(privEnsureNat, { guest_ip: "172.16.91.2", tap: "tap-fc-0000aaaa", enable: false });
    assert.deepEqual((await helper.call(privDeleteTap, { tap_name: "tap-fc-0000aaaa" })).deleted, true);
    assert.deepEqual((await helper.call(privNetworkStatus, {})).nat.guests, [{ ip: "172.16.91.3", tap: "tap-pool-0" }]);
    // Last VM gone: the ruleset and ip_forward are back to exactly what they were.
    await helper.call(privEnsureNat, { guest_ip: "172.16.91.3", tap: "tap-pool-0", enable: false });
    await helper.call(privDeleteTap, { tap_name: "tap-pool-0" });
    assert.equal(await ns.run(["nft", "list", "ruleset"]), nftBefore, "nft ruleset identical after the last VM");
    assert.equal(await iptablesSave(ns), iptBefore, "iptables-save identical after the last VM");
    assert.equal(await ipForward(ns), forwarding, "ip_forward restored");

    // NAT left with no VM needing it (what start-up removes): only banger's table or chains go.
    await helper.call(privCreateTap, { tap_name: "tap-pool-1" });
    await helper.call(privEnsureNat, { guest_ip: "172.16.91.9", tap: "tap-pool-1", enable: true });
    assert.deepEqual(await helper.call(privRemoveNatAll, {}), { removed: [backend] });
    assert.equal(await ns.run(["nft", "list", "ruleset"]), nftBefore);
    assert.equal(await iptablesSave(ns), iptBefore);
    assert.equal(await ipForward(ns), forwarding);
    await helper.call(privDeleteTap, { tap_name: "tap-pool-1" });

    // Uninstall (priv.teardown_network): NAT, taps and the bridge all go; links identical to before.
    await helper.call(privCreateTap, { tap_name: "tap-pool-2" });
    await helper.call(privEnsureNat, { guest_ip: "172.16.91.9", tap: "tap-pool-2", enable: true });
    const td = await helper.call(privTeardownNetwork, {});
    assert.deepEqual(td.removed.filter((r) => r !== "resolver").sort(), ["bgtbr0", `nat:${backend}`, "tap-pool-2"]);
    assert.equal(await links(ns), linksBefore, "ip link identical after teardown");
    assert.equal(await ns.run(["nft", "list", "ruleset"]), nftBefore);
    assert.equal(await iptablesSave(ns), iptBefore);
    assert.equal(await ipForward(ns), forwarding);
    assert.deepEqual((await helper.call(privTeardownNetwork, {})).removed, [], "idempotent: a second teardown finds nothing");
  });
}

void test("iptables fallback leaves foreign rules and chains untouched", { skip: requires(needsRoot(), needsCommands("ip", "iptables-save")) }, async (t) => {
  const ns = await createNetNs("bgt-net");
  t.after(() => ns.destroy());
  await ns.run(["iptables", "-w", "-N", "OTHER-TOOL"]);
  await ns.run(["iptables", "-w", "-A", "FORWARD", "-j", "OTHER-TOOL"]);
  await ns.run(["iptables", "-w", "-t", "nat", "-A", "POSTROUTING", "-s", "10.99.0.0/16", "-j", "MASQUERADE"]);
  const before = await iptablesSave(ns);
  const helper = await startHelperInNetns(ns, OWNER, CFG("iptables"));
  t.after(() => helper.stop());
  await helper.call(privEnsureNat, { guest_ip: "172.16.91.2", tap: "tap-fc-0000aaaa", enable: true });
  const during = await iptablesSave(ns);
  assert.match(during, /-A FORWARD -j OTHER-TOOL/);
  await helper.call(privEnsureNat, { guest_ip: "172.16.91.2", tap: "tap-fc-0000aaaa", enable: false });
  assert.equal(await iptablesSave(ns), before, "the last guest's rules gone, banger's chains go too; the other tool's stay");
});
