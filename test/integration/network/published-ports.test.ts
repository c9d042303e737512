import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { privEnsureBridge, privEnsureNat } from "../../../src/rpc/priv/network.js";
import { privListPorts, privSetPorts } from "../../../src/rpc/priv/ports.js";
import { type NetNs, createNetNs, linkNamespaces } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { startHelperInNetns } from "../../helpers/helper-in-netns.js";

/*
 * Published ports without booting a guest: a "guest" namespace on the helper's bridge through a
 * veth named like a tap, a server in it, and an "outside" namespace linked to the host. Traffic goes
 * host loopback → DNAT → guest, and outside → host address → DNAT → guest, all in the kernel.
 */

const client = (host: string, port: number): string =>
  `const c=require("net").connect({host:${JSON.stringify(host)},port:${port},timeout:2000});let o="";c.on("data",d=>o+=d);c.on("end",()=>{console.log(o.trim());process.exit(0)});c.on("timeout",()=>{console.log("TIMEOUT");process.exit(3)});c.on("error",e=>{console.log("ERR "+e.code);process.exit(4)});`;

function runIn(ns: NetNs, args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", ns.name, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.stderr.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.on("close", (code) => { resolve({ code, out: out.trim() }); });
  });
}

/** A TCP server in `ns` that answers `reply` to every client; killed by `t.after`. */
async function serve(ns: NetNs, host: string, port: number, reply: string, t: { after: (fn: () => void) => void }): Promise<number> {
  const source = `require("net").createServer(c=>{c.end(${JSON.stringify(reply)}+"\\n");}).listen(${port},${JSON.stringify(host)},()=>console.log("listening"));setTimeout(()=>process.exit(0),120000);`;
  const server = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", source], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => { server.kill("SIGKILL"); });
  await new Promise<void>((resolve, reject) => {
    server.stdout.once("data", () => { resolve(); });
    server.once("exit", () => { reject(new Error(`server on ${host}:${port} exited`)); });
  });
  return server.pid ?? 0;
}

void test("published ports: host loopback and another namespace reach a guest's server through kernel DNAT; conflicts name the holder; removal leaves nothing", { skip: requires(needsRoot(), needsCommands("ip", "nft", "ss")) }, async (t) => {
  const host = await createNetNs("bgt-pp-h");
  t.after(() => host.destroy());
  const guest = await createNetNs("bgt-pp-g");
  t.after(() => guest.destroy());
  const outside = await createNetNs("bgt-pp-o");
  t.after(() => outside.destroy());

  const helper = await startHelperInNetns(host, { uid: 4242, gid: 4242 }, `[network]\nbridge = "bgtbr1"\ncidr = "172.16.93.0/24"\n`);
  t.after(() => helper.stop());
  await helper.call(privEnsureBridge, {});
  const tap = "tap-fc-0000cccc";
  await host.run(["ip", "link", "add", tap, "type", "veth", "peer", "name", "bgtpg1"]);
  await host.run(["ip", "link", "set", "bgtpg1", "netns", guest.name]);
  await host.run(["ip", "link", "set", tap, "master", "bgtbr1", "up"]);
  await guest.run(["ip", "addr", "add", "172.16.93.2/24", "dev", "bgtpg1"]);
  await guest.run(["ip", "link", "set", "bgtpg1", "up"]);
  await guest.run(["ip", "route", "add", "default", "via", "172.16.93.1"]);
  await linkNamespaces(host, outside, "198.51.100.1/24", "198.51.100.2/24");
  await helper.call(privEnsureNat, { guest_ip: "172.16.93.2", tap, enable: true });
  await serve(guest, "172.16.93.2", 80, "from-guest", t);

  // Ownership and validation: every refusal is bad_params naming the field, and nothing is installed.
  const refusals: [unknown, RegExp][] = [
    [{ guest_ip: "172.16.93.9", tap, ports: [{ host_ip: "127.0.0.1", host_port: 18080, guest_port: 80, proto: "tcp" }] }, /guest_ip: 172\.16\.93\.9 is not the NAT'd guest/],
    [{ guest_ip: "172.16.93.2", tap: "tap-fc-0000eeee", ports: [{ host_ip: "127.0.0.1", host_port: 18080, guest_port: 80, proto: "tcp" }] }, /tap: tap-fc-0000eeee is not attached/],
    [{ guest_ip: "10.0.0.2", tap, ports: [{ host_ip: "127.0.0.1", host_port: 18080, guest_port: 80, proto: "tcp" }] }, /not a guest address inside/],
    [{ guest_ip: "172.16.93.2", tap, ports: [{ host_ip: "127.0.0.1\n", host_port: 18080, guest_port: 80, proto: "tcp" }] }, /ports\[0\]\.host_ip: .* is not an IPv4 address/],
    [{ guest_ip: "172.16.93.2", tap, ports: [{ host_ip: "0.0.0.0", host_port: 18080, guest_port: 80, proto: "tcp" }] }, /0\.0\.0\.0 is not supported/],
    [{ guest_ip: "172.16.93.2", tap, ports: [{ host_ip: "127.0.0.1", host_port: 0, guest_port: 80, proto: "tcp" }] }, /host_port: 0 is not an integer in 1\.\.65535/],
    [{ guest_ip: "172.16.93.2", tap, ports: [{ host_ip: "127.0.0.1", host_port: 18080, guest_port: 65536, proto: "tcp" }] }, /guest_port: 65536/],
    [{ guest_ip: "172.16.93.2", tap, ports: [{ host_ip: "172.16.93.1", host_port: 18080, guest_port: 80, proto: "tcp" }] }, /inside banger's network/],
    [{ guest_ip: "172.16.93.2", tap, ports: [{ host_ip: "203.0.113.9", host_port: 18080, guest_port: 80, proto: "tcp" }] }, /is not an address of this host/],
    [{ guest_ip: "172.16.93.2", tap: "tap-fc-0000cccc; drop", ports: [] }, /not a banger tap name/],
  ];
  for (const [params, why] of refusals) {
    await assert.rejects(helper.call(privSetPorts, params as never), (e: Error) => why.test(e.message), JSON.stringify(params));
  }
  assert.deepEqual((await helper.call(privListPorts, {})).ports, []);

  const published = await helper.call(privSetPorts, { guest_ip: "172.16.93.2", tap, ports: [
    { host_ip: "127.0.0.1", host_port: 18080, guest_port: 80, proto: "tcp" },
    { host_ip: "198.51.100.1", host_port: 18081, guest_port: 80, proto: "tcp" },
  ] });
  assert.equal(published.ports.length, 2);
  const fromLoopback = await runIn(host, [process.execPath, "-e", client("127.0.0.1", 18080)]);
  assert.deepEqual(fromLoopback, { code: 0, out: "from-guest" });
  const fromOutside = await runIn(outside, [process.execPath, "-e", client("198.51.100.1", 18081)]);
  assert.deepEqual(fromOutside, { code: 0, out: "from-guest" });
  // Bound to the outside address only: loopback on that port is not forwarded.
  assert.notEqual((await runIn(host, [process.execPath, "-e", client("127.0.0.1", 18081)])).code, 0);
  assert.equal((await host.run(["cat", "/proc/sys/net/ipv4/conf/bgtbr1/route_localnet"])).trim(), "1");

  // route_localnet is on for the bridge: a guest that routes 127.0.0.0/8 to the host must still not
  // reach the host's loopback services. The guard's counter shows its packets did arrive, and were dropped.
  await serve(host, "127.0.0.1", 18095, "host-loopback-service", t);
  // A hostile guest controls its own kernel: it may send loopback destinations out of its link.
  await guest.sysctl("net.ipv4.conf.bgtpg1.route_localnet", "1");
  await guest.run(["ip", "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local"]);
  await guest.run(["ip", "route", "del", "local", "127.0.0.1", "dev", "lo", "table", "local"]);
  await guest.run(["ip", "route", "add", "127.0.0.1/32", "via", "172.16.93.1", "dev", "bgtpg1", "src", "172.16.93.2"]);
  assert.notEqual((await runIn(guest, [process.execPath, "-e", client("127.0.0.1", 18095)])).code, 0, "a guest must not reach the host's loopback");
  assert.match(await host.run(["nft", "list", "chain", "ip", "banger_ports", "guard"]), /counter packets [1-9][0-9]* bytes [0-9]+ drop/);

  // Another guest asking for the same host port gets the error, naming who has it.
  const tap2 = "tap-fc-0000dddd";
  await host.run(["ip", "link", "add", tap2, "type", "veth", "peer", "name", "bgtpg2"]);
  await host.run(["ip", "link", "set", tap2, "master", "bgtbr1", "up"]);
  await helper.call(privEnsureNat, { guest_ip: "172.16.93.3", tap: tap2, enable: true });
  await assert.rejects(helper.call(privSetPorts, { guest_ip: "172.16.93.3", tap: tap2, ports: [{ host_ip: "127.0.0.1", host_port: 18080, guest_port: 80, proto: "tcp" }] }),
    /host port 127\.0\.0\.1:18080\/tcp is already published to 172\.16\.93\.2:80 \(tap-fc-0000cccc\)/);
  // A host server on the port: the error names the process.
  const pid = await serve(host, "127.0.0.1", 18090, "host", t);
  await assert.rejects(helper.call(privSetPorts, { guest_ip: "172.16.93.3", tap: tap2, ports: [{ host_ip: "127.0.0.1", host_port: 18090, guest_port: 80, proto: "tcp" }] }),
    (e: Error) => e.message.includes("127.0.0.1:18090/tcp is already in use on the host by node (pid") && e.message.includes(String(pid)) || assert.fail(e.message));
  assert.equal((await helper.call(privListPorts, {})).ports.length, 2, "refused requests change nothing");

  // Unpublishing: the path is cut, and the last port takes the table and route_localnet with it.
  await helper.call(privSetPorts, { guest_ip: "172.16.93.2", tap, ports: [{ host_ip: "198.51.100.1", host_port: 18081, guest_port: 80, proto: "tcp" }] });
  assert.notEqual((await runIn(host, [process.execPath, "-e", client("127.0.0.1", 18080)])).code, 0);
  assert.equal((await runIn(outside, [process.execPath, "-e", client("198.51.100.1", 18081)])).code, 0);
  await helper.call(privSetPorts, { guest_ip: "172.16.93.2", tap, ports: [] });
  assert.notEqual((await runIn(outside, [process.execPath, "-e", client("198.51.100.1", 18081)])).code, 0);
  assert.doesNotMatch(await host.run(["nft", "list", "tables"]), /banger_ports/);
  assert.equal((await host.run(["cat", "/proc/sys/net/ipv4/conf/bgtbr1/route_localnet"])).trim(), "0");
  // Idempotent: unpublishing again is a no-op.
  assert.deepEqual((await helper.call(privSetPorts, { guest_ip: "172.16.93.2", tap, ports: [] })).ports, []);
});
