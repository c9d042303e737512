import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { privLearnEgress, privListEgress, privSetEgress } from "../../../src/rpc/priv/egress.js";
import { privEnsureBridge, privEnsureNat } from "../../../src/rpc/priv/network.js";
import { type NetNs, createNetNs, linkNamespaces } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startHelperInNetns } from "../../helpers/helper-in-netns.js";

/*
 * Egress without booting a guest: two "guest" namespaces on the helper's bridge through veths named
 * like taps, an "internet" namespace linked to the host with two addresses, and services on the
 * host's bridge address and on 169.254.169.254. Every check is a TCP connect from inside a namespace.
 */

const client = (host: string, port: number, localAddress?: string): string =>
  `const c=require("net").connect({host:${JSON.stringify(host)},port:${port},timeout:1500${localAddress === undefined ? "" : `,localAddress:${JSON.stringify(localAddress)}`}});let o="";c.on("data",d=>o+=d);c.on("end",()=>{console.log(o.trim());process.exit(0)});c.on("timeout",()=>{console.log("TIMEOUT");process.exit(3)});c.on("error",e=>{console.log("ERR "+e.code);process.exit(4)});`;

function connectFrom(ns: NetNs, host: string, port: number, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", client(host, port, localAddress)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.on("close", () => { resolve(out.trim()); });
  });
}

/** A TCP server in `ns` that answers `reply` to every client; killed by `t.after`. */
async function serve(ns: NetNs, host: string, port: number, reply: string, t: { after: (fn: () => void) => void }): Promise<void> {
  const source = `require("net").createServer(c=>{c.end(${JSON.stringify(reply)}+"\\n");}).listen(${port},${JSON.stringify(host)},()=>console.log("listening"));setTimeout(()=>process.exit(0),300000);`;
  const server = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", source], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => { server.kill("SIGKILL"); });
  await new Promise<void>((resolve, reject) => {
    server.stdout.once("data", () => { resolve(); });
    server.once("exit", () => { reject(new Error(`server on ${host}:${port} exited`)); });
  });
}

async function guestOnBridge(host: NetNs, guest: NetNs, tap: string, peer: string, ip: string): Promise<void> {
  await host.run(["ip", "link", "add", tap, "type", "veth", "peer", "name", peer]);
  await host.run(["ip", "link", "set", peer, "netns", guest.name]);
  await host.run(["ip", "link", "set", tap, "master", "bgtbr4", "up"]);
  await guest.run(["ip", "addr", "add", `${ip}/24`, "dev", peer]);
  await guest.run(["ip", "link", "set", peer, "up"]);
  await guest.run(["ip", "route", "add", "default", "via", "172.16.94.1"]);
}

void test("egress: host guard and link-local for every guest; all/none/allow= with learned addresses; no port 53 elsewhere; isolation and spoofing on the bridge; nothing left", { skip: requires(needsRoot(), needsCommands("ip", "nft")), timeout: 300_000 }, async (t) => {
  const host = await createNetNs("bgt-eg-h");
  t.after(() => host.destroy());
  const g1 = await createNetNs("bgt-eg-a");
  t.after(() => g1.destroy());
  const g2 = await createNetNs("bgt-eg-b");
  t.after(() => g2.destroy());
  const inet = await createNetNs("bgt-eg-i");
  t.after(() => inet.destroy());

  const helper = await startHelperInNetns(host, { uid: 4242, gid: 4242 }, `[network]\nbridge = "bgtbr4"\ncidr = "172.16.94.0/24"\ndns_listen = "127.0.0.1:10053"\n`);
  t.after(() => helper.stop());
  await helper.call(privEnsureBridge, {});
  const tap1 = "tap-fc-0000e001";
  const tap2 = "tap-fc-0000e002";
  await guestOnBridge(host, g1, tap1, "bgteg1", "172.16.94.2");
  await guestOnBridge(host, g2, tap2, "bgteg2", "172.16.94.3");
  await linkNamespaces(host, inet, "198.51.100.1/24", "198.51.100.2/24");
  const inetLink = (await inet.run(["ip", "-o", "-4", "addr", "show", "to", "198.51.100.2"])).split(/\s+/)[1] ?? "";
  await inet.run(["ip", "addr", "add", "198.51.100.3/24", "dev", inetLink]);
  // A metadata-style service on the host (on lo: kernels without the dummy module exist).
  await host.run(["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"]);
  await helper.call(privEnsureNat, { guest_ip: "172.16.94.2", tap: tap1, enable: true });
  await helper.call(privEnsureNat, { guest_ip: "172.16.94.3", tap: tap2, enable: true });
  await serve(inet, "198.51.100.2", 80, "site-a", t);
  await serve(inet, "198.51.100.3", 80, "site-b", t);
  await serve(inet, "198.51.100.3", 53, "dns-b", t);
  await serve(host, "172.16.94.1", 7000, "host-service", t);
  await serve(host, "172.16.94.1", 10053, "bangers-dns", t);
  await serve(host, "169.254.169.254", 80, "metadata", t);
  await serve(g1, "172.16.94.2", 80, "guest-1", t);
  await serve(g2, "172.16.94.3", 80, "guest-2", t);

  // Validation: every refusal is bad_params naming the field, and nothing is installed.
  const base = { guest_ip: "172.16.94.2", tap: tap1, remove: false, mode: "allow", cidrs: ["198.51.100.2/32"], isolate: false, forget_learned: false };
  const refusals: [unknown, RegExp][] = [
    [{ ...base, guest_ip: "10.0.0.2" }, /guest_ip: 10\.0\.0\.2 is not a guest address inside/],
    [{ ...base, guest_ip: "172.16.94.1" }, /is not a guest address/],
    [{ ...base, tap: "tap-fc-0000eeee" }, /tap: tap-fc-0000eeee is not attached/],
    [{ ...base, tap: `${tap1}" }; flush ruleset; #` }, /not a banger tap name/],
    [{ ...base, cidrs: ["198.51.100.2/32 }; flush ruleset"] }, /cidrs\[0\]: .* is not an IPv4 CIDR/],
    [{ ...base, cidrs: ["198.51.100.2"] }, /cidrs\[0\]/],
    [{ ...base, cidrs: ["198.51.100.3/24"] }, /host bits clear/],
    [{ ...base, cidrs: ["10.0.0.0/8", "10.0.0.0/8"] }, /listed twice/],
    [{ ...base, mode: "none" }, /only an allow policy lists CIDRs/],
    [{ ...base, mode: "some" }, /mode/],
  ];
  for (const [params, why] of refusals) {
    await assert.rejects(helper.call(privSetEgress, params as never), (e: Error) => why.test(e.message), JSON.stringify(params));
  }
  await assert.rejects(helper.call(privLearnEgress, { guest_ip: "172.16.94.2", addrs: [{ ip: "198.51.100.3", ttl_s: 60 }] }), /not registered with an allow policy/);
  assert.deepEqual((await helper.call(privListEgress, {})).guests, []);
  assert.doesNotMatch(await host.run(["nft", "list", "tables"]), /banger_egress/);

  // Unregistered (as before this feature): everything is reachable.
  assert.equal(await connectFrom(g1, "172.16.94.1", 7000), "host-service");
  assert.equal(await connectFrom(g1, "198.51.100.3", 80), "site-b");

  // Registered with `all`: the host's services and link-local are out of reach, the internet and banger's DNS port are not.
  const set = (ip: string, tap: string, over: Partial<typeof base> = {}): Promise<unknown> => helper.call(privSetEgress, { ...base, guest_ip: ip, tap, mode: "all", cidrs: [], ...over } as never);
  await set("172.16.94.2", tap1);
  await set("172.16.94.3", tap2);
  assert.match(await connectFrom(g1, "172.16.94.1", 7000), /TIMEOUT/, "host service on the bridge address");
  assert.match(await connectFrom(g1, "169.254.169.254", 80), /TIMEOUT/, "169.254.169.254");
  assert.equal(await connectFrom(g1, "172.16.94.1", 10053), "bangers-dns", "banger's DNS port on the bridge address");
  assert.equal(await connectFrom(g1, "198.51.100.3", 80), "site-b");
  assert.equal(await connectFrom(g1, "198.51.100.3", 53), "dns-b", "port 53 elsewhere is only cut under a policy");
  assert.equal(await connectFrom(host, "172.16.94.2", 80), "guest-1", "the host still reaches the guest (ssh, agent, published ports)");
  assert.equal(await connectFrom(g1, "172.16.94.3", 80), "guest-2", "guests reach each other unless isolated");

  // allow= one address: only it, and not its port 53; a learned address joins for its timeout.
  await set("172.16.94.2", tap1, { mode: "allow", cidrs: ["198.51.100.2/32"] });
  assert.equal(await connectFrom(g1, "198.51.100.2", 80), "site-a");
  assert.match(await connectFrom(g1, "198.51.100.3", 80), /TIMEOUT/);
  assert.equal(await connectFrom(g2, "198.51.100.3", 80), "site-b", "another guest's policy is its own");
  await helper.call(privLearnEgress, { guest_ip: "172.16.94.2", addrs: [{ ip: "198.51.100.3", ttl_s: 2 }] });
  assert.equal(await connectFrom(g1, "198.51.100.3", 80), "site-b", "learned");
  assert.match(await connectFrom(g1, "198.51.100.3", 53), /TIMEOUT/, "port 53 stays cut even to an allowed address");
  await new Promise((r) => setTimeout(r, 2500));
  assert.match(await connectFrom(g1, "198.51.100.3", 80), /TIMEOUT/, "the learned address expired with its timeout");
  await helper.call(privLearnEgress, { guest_ip: "172.16.94.2", addrs: [{ ip: "198.51.100.3", ttl_s: 300 }] });
  await helper.call(privLearnEgress, { guest_ip: "172.16.94.2", addrs: [{ ip: "198.51.100.3", ttl_s: 600 }] });
  assert.match(await host.run(["nft", "list", "set", "inet", "banger_egress", "learned"]), /172\.16\.94\.2 \. 198\.51\.100\.3 timeout 10m/, "learning again renews the timeout");
  const listed = (await helper.call(privListEgress, {})).guests.find((x) => x.guest_ip === "172.16.94.2");
  assert.deepEqual(listed, { guest_ip: "172.16.94.2", tap: tap1, mode: "allow", cidrs: ["198.51.100.2/32"], isolate: false, learned: 1 });

  // A guest passing as an unregistered address gets nothing through the bridge.
  await g1.run(["ip", "addr", "add", "172.16.94.9/24", "dev", "bgteg1"]);
  assert.match(await connectFrom(g1, "198.51.100.3", 80, "172.16.94.9"), /TIMEOUT/, "spoofed source");

  // none: only banger's DNS; the live change forgets learned addresses when asked.
  await set("172.16.94.2", tap1, { mode: "none", forget_learned: true });
  assert.match(await connectFrom(g1, "198.51.100.2", 80), /TIMEOUT/);
  assert.match(await connectFrom(g1, "198.51.100.3", 80), /TIMEOUT/);
  assert.equal(await connectFrom(g1, "172.16.94.1", 10053), "bangers-dns");

  // Isolation: no frame between the isolated tap and the other ports, both ways; the host is still there.
  await set("172.16.94.2", tap1, { isolate: true });
  assert.match(await connectFrom(g1, "172.16.94.3", 80), /TIMEOUT|EHOSTUNREACH/);
  assert.match(await connectFrom(g2, "172.16.94.2", 80), /TIMEOUT|EHOSTUNREACH/);
  assert.equal(await connectFrom(g1, "198.51.100.2", 80), "site-a", "isolation is on the bridge, not egress");
  assert.equal(await connectFrom(host, "172.16.94.2", 80), "guest-1");

  // Removal: idempotent; the last guest takes both tables with it.
  await set("172.16.94.2", tap1, { remove: true });
  await set("172.16.94.2", tap1, { remove: true });
  assert.equal((await helper.call(privListEgress, {})).guests.length, 1);
  await set("172.16.94.3", tap2, { remove: true });
  assert.doesNotMatch(await host.run(["nft", "list", "tables"]), /banger_egress/);
  assert.deepEqual((await helper.call(privListEgress, {})).guests, []);
});
