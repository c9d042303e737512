import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { DnsServer } from "../../../src/daemon/dns/server.js";
import { privEnsureBridge, privEnsureNat } from "../../../src/rpc/priv/network.js";
import { silentLogger } from "../../../src/system/log.js";
import { type NetNs, createNetNs, linkNamespaces, startEchoAddressServer } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { resolveA } from "../../helpers/dns-query.js";
import { startHelperInNetns } from "../../helpers/helper-in-netns.js";

/*
 * NAT end to end without booting a guest: a "guest" namespace plugged into the
 * helper's bridge with a veth (standing in for the tap), an "internet"
 * namespace behind the host with NO route back to the guest network. The guest
 * reaches the internet only through banger's masquerade, and the internet
 * side sees the host's address, not the guest's.
 */

const CLIENT = `const c=require("net").connect({host:"198.51.100.2",port:8080,timeout:2000});let o="";c.on("data",d=>o+=d);c.on("end",()=>{console.log(o.trim());process.exit(0)});c.on("timeout",()=>{console.log("TIMEOUT");process.exit(3)});c.on("error",e=>{console.log("ERR "+e.code);process.exit(4)});`;

function runIn(ns: NetNs, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", ns.name, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.stderr.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.on("close", (code) => { resolve({ code, out: out.trim() }); });
  });
}


void test("a guest on the bridge reaches an 'internet' namespace only through banger's NAT (masqueraded), and the host reaches it by NAME.vm", { skip: requires(needsRoot(), needsCommands("ip", "nft", "busybox")) }, async (t) => {
  const host = await createNetNs("bgt-net-h");
  t.after(() => host.destroy());
  const guest = await createNetNs("bgt-net-g");
  t.after(() => guest.destroy());
  const inet = await createNetNs("bgt-net-i");
  t.after(() => inet.destroy());

  const helper = await startHelperInNetns(host, { uid: 4242, gid: 4242 }, `[network]\nbridge = "bgtbr0"\ncidr = "172.16.92.0/24"\n`);
  t.after(() => helper.stop());
  await helper.call(privEnsureBridge, {});
  // The veth end on the host side plays the tap; the guest end gets the leased address and the bridge as gateway.
  await host.run(["ip", "link", "add", "bgtgv0", "type", "veth", "peer", "name", "bgtgv1"]);
  await host.run(["ip", "link", "set", "bgtgv1", "netns", guest.name]);
  await host.run(["ip", "link", "set", "bgtgv0", "master", "bgtbr0", "up"]);
  await guest.run(["ip", "addr", "add", "172.16.92.2/24", "dev", "bgtgv1"]);
  await guest.run(["ip", "link", "set", "bgtgv1", "up"]);
  await guest.run(["ip", "route", "add", "default", "via", "172.16.92.1"]);
  await linkNamespaces(host, inet, "198.51.100.1/24", "198.51.100.2/24");

  await startEchoAddressServer(inet, t, 60_000);

  // Without NAT: forwarding is off in the host namespace and the internet has no route back.
  const before = await runIn(guest, [process.execPath, "-e", CLIENT]);
  assert.notEqual(before.code, 0, `guest must not reach the internet before NAT is enabled (got ${before.out})`);

  const t0 = Date.now();
  await helper.call(privEnsureNat, { guest_ip: "172.16.92.2", tap: "tap-fc-0000bbbb", enable: true });
  const enableMs = Date.now() - t0;
  const through = await runIn(guest, [process.execPath, "-e", CLIENT]);
  assert.equal(through.code, 0, through.out);
  assert.equal(through.out.replace(/^::ffff:/, ""), "198.51.100.1", "the internet sees the host's address: masqueraded");

  // The host reaches the guest by name: banger's DNS answers NAME.vm with the lease, and that address answers.
  const dns = new DnsServer(silentLogger);
  t.after(async () => { await dns.close(); });
  const addr = await dns.start("127.0.0.1:0");
  await dns.publish("guest1", "172.16.92.2");
  const answer = await resolveA(addr, "guest1.vm");
  assert.deepEqual(answer, { rcode: "NOERROR", ips: ["172.16.92.2"] });
  assert.equal((await resolveA(addr, "nobody.vm")).rcode, "NXDOMAIN");
  assert.equal((await resolveA(addr, "example.com")).rcode, "REFUSED");
  const ping = await runIn(host, ["busybox", "ping", "-c", "1", "-W", "2", answer.ips[0] ?? ""]);
  assert.equal(ping.code, 0, ping.out);

  // Disabling (VM deleted) cuts the path again.
  await helper.call(privEnsureNat, { guest_ip: "172.16.92.2", tap: "tap-fc-0000bbbb", enable: false });
  const after = await runIn(guest, [process.execPath, "-e", CLIENT]);
  assert.notEqual(after.code, 0, `guest must not reach the internet after NAT is disabled (got ${after.out})`);
  t.diagnostic(`ensure_nat enable round trip: ${enableMs} ms`);
});
