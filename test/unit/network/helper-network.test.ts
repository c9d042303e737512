import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { after, test } from "node:test";
import { configSchema } from "../../../src/config/schema.js";
import { Dispatcher } from "../../../src/rpc/dispatcher.js";
import { networkMethods, type NetworkDeps } from "../../../src/roothelper/methods/network.js";
import type { IpForward } from "../../../src/roothelper/nat/ip-forward.js";
import type { BridgeState, LinkOps } from "../../../src/roothelper/netdev.js";
import { errnoError } from "../../../src/system/libc.js";
import type { PeerCred } from "../../../src/system/peercred.js";
import { CommandError, FakeRunner, type FakeResponder } from "../../../src/system/runner.js";
import { testHelperEnv } from "../../helpers/helper-env.js";

const dirs = mkdtempSync("/tmp/bgt-net-env-");
after(() => { rmSync(dirs, { recursive: true, force: true }); });

const PEER: PeerCred = { pid: 1, uid: 0, gid: 0 };

class FakeIpForward implements IpForward {
  writes: boolean[] = [];
  constructor(public on = false) {}
  get(): Promise<boolean> { return Promise.resolve(this.on); }
  set(on: boolean): Promise<void> { this.on = on; this.writes.push(on); return Promise.resolve(); }
}

/** The host's links as both `ip` (through the FakeRunner) and the in-process LinkOps see them. */
interface LinkModel {
  /** name -> ifindex; a re-created link gets a new index, as in the kernel. */
  readonly links: Map<string, number>;
  readonly addrs: Map<string, string[]>;
  readonly up: Set<string>;
  readonly taps: Map<string, { uid: number; gid: number; master?: string }>;
  add(name: string): void;
}

function linkModel(): LinkModel {
  let next = 1;
  const links = new Map<string, number>();
  return { links, addrs: new Map(), up: new Set(), taps: new Map(), add: (name) => { links.set(name, next++); } };
}

/** A LinkOps over the model that records each call and can be told to fail one of them. */
class FakeLinks implements LinkOps {
  readonly calls: string[] = [];
  failAttach: Error | undefined;
  constructor(private readonly m: LinkModel) {}
  exists(name: string): boolean {
    this.calls.push(`exists ${name}`);
    return this.m.links.has(name);
  }
  bridgeState(bridge: string): BridgeState | undefined {
    this.calls.push(`bridgeState ${bridge}`);
    const ifindex = this.m.links.get(bridge);
    if (ifindex === undefined) return undefined;
    const primary = this.m.addrs.get(bridge)?.[0];
    return { ifindex, up: this.m.up.has(bridge), ...(primary === undefined ? {} : { cidr: primary }) };
  }
  createTap(name: string, uid: number, gid: number): void {
    this.calls.push(`createTap ${name} ${uid} ${gid}`);
    if (this.m.links.has(name)) throw errnoError(`TUNSETIFF ${name}`, 16);
    this.m.add(name);
    this.m.taps.set(name, { uid, gid });
  }
  attachUp(tap: string, bridge: string): void {
    this.calls.push(`attachUp ${tap} ${bridge}`);
    if (this.failAttach !== undefined) throw this.failAttach;
    if (!this.m.links.has(bridge)) throw errnoError(`SIOCBRADDIF ${tap} to ${bridge}`, 19);
    const t = this.m.taps.get(tap);
    if (t !== undefined) t.master = bridge;
    this.m.up.add(tap);
  }
}

/** A tiny model of `ip link` + `nft` so the handlers' check-then-act paths can be exercised without root. */
function hostModel(): { responder: FakeResponder; m: LinkModel; links: Map<string, number>; nft: { table: boolean; elems: Map<string, string>; marker: boolean } } {
  const m = linkModel();
  const { links, addrs, up } = m;
  const nft = { table: false, elems: new Map<string, string>(), marker: false };
  const missing = (argv: readonly string[], what: string): Error => new CommandError(argv, 1, null, "", what);
  const responder: FakeResponder = (argv) => {
    const a = argv.join(" ");
    if (a.startsWith("ip link add name ")) {
      if (links.has(argv[4] ?? "")) return missing(argv, "RTNETLINK answers: File exists");
      m.add(argv[4] ?? "");
      return {};
    }
    if (argv[0] === "iptables") return missing(argv, "iptables: No chain/target/match by that name.");
    if (a.startsWith("ip link del ")) {
      const dev = argv[3] ?? "";
      links.delete(dev);
      addrs.delete(dev);
      up.delete(dev);
      m.taps.delete(dev);
      return {};
    }
    if (a.startsWith("ip -j addr show dev ")) {
      const dev = argv[5] ?? "";
      if (!links.has(dev)) return missing(argv, `Device "${dev}" does not exist.`);
      const addr_info = (addrs.get(dev) ?? []).map((cidr) => ({ family: "inet", local: cidr.split("/")[0], prefixlen: Number(cidr.split("/")[1]) }));
      return { stdout: Buffer.from(JSON.stringify([{ ifname: dev, flags: up.has(dev) ? ["BROADCAST", "UP"] : ["BROADCAST"], addr_info }])) };
    }
    if (a.startsWith("ip addr add ")) { addrs.set(argv[5] ?? "", [...(addrs.get(argv[5] ?? "") ?? []), argv[3] ?? ""]); return {}; }
    if (a.startsWith("ip link set ") && argv.at(-1) === "up") { up.add(argv[3] === "dev" ? (argv[4] ?? "") : (argv[3] ?? "")); return {}; }
    if (a === "ip -j -d link show") {
      const shown = [...links.keys()].map((ifname) => {
        const tap = m.taps.get(ifname);
        return tap === undefined ? { ifname } : { ifname, ...(tap.master !== undefined ? { master: tap.master } : {}), linkinfo: { info_kind: "tun", info_data: { type: "tap", user: tap.uid } } };
      });
      return { stdout: Buffer.from(JSON.stringify(shown)) };
    }
    if (a === "nft list tables") return {};
    if (a === "nft -j list table ip banger") {
      if (!nft.table) return missing(argv, "Error: No such file or directory");
      const elem = [...nft.elems].map(([val, comment]) => ({ elem: { val, comment } }));
      const items: unknown[] = [{ table: { name: "banger" } }, { set: { name: "guests", elem } }];
      if (nft.marker) items.push({ chain: { name: "ip_forward_set_by_banger" } });
      return { stdout: Buffer.from(JSON.stringify({ nftables: items })) };
    }
    return {};
  };
  return { responder, m, links, nft };
}

function setup(overrides: Record<string, unknown> = {}, deps: Partial<NetworkDeps> = {}): { runner: FakeRunner; d: Dispatcher<PeerCred>; model: ReturnType<typeof hostModel>; fwd: FakeIpForward; links: FakeLinks } {
  const model = hostModel();
  const links = new FakeLinks(model.m);
  const fwd = new FakeIpForward();
  // Mirror nft scripts into the model so state() sees what earlier calls did.
  const runner = new FakeRunner((argv) => model.responder(argv));
  const origRun = runner.run.bind(runner);
  runner.run = async (argv, options) => {
    // Like nft: an element cannot go into a table that is not there.
    const stdin = String(options?.stdin ?? "");
    if (argv[0] === "nft" && argv[1] === "-f" && stdin.startsWith("add element") && !model.nft.table) throw new CommandError([...argv], 1, null, "", "Error: Could not process rule: No such file or directory");
    const out = await origRun(argv, options);
    if (argv[0] === "nft" && argv[1] === "-f") {
      for (const line of String(options?.stdin ?? "").split("\n")) {
        if (line.startsWith("add table")) model.nft.table = true;
        if (line.includes("ip_forward_set_by_banger")) model.nft.marker = true;
        const add = /^add element ip banger guests \{ (\S+) comment "(\S+)" \}$/.exec(line);
        if (add !== null) model.nft.elems.set(add[1] ?? "", add[2] ?? "");
        const del = /^delete element ip banger guests \{ (\S+) \}$/.exec(line);
        if (del !== null) model.nft.elems.delete(del[1] ?? "");
        if (line === "delete table ip banger") { model.nft.table = false; model.nft.elems.clear(); model.nft.marker = false; }
      }
    }
    return out;
  };
  const config = configSchema.parse({ network: { bridge: "banger0", cidr: "172.16.90.0/24", ...overrides } });
  const env = testHelperEnv({ ownerUid: 1234, ownerGid: 2345, stateDir: `${dirs}/state`, helperDir: `${dirs}/run`, config, runner });
  const d = new Dispatcher<PeerCred>(networkMethods(env, { ipForward: fwd, resolverUnavailable: () => "systemd-resolved is not running", tuneNeighbours: () => Promise.resolve(), links, ...deps }));
  return { runner, d, model, fwd, links };
}

async function call(d: Dispatcher<PeerCred>, method: string, params: unknown): Promise<{ ok: boolean; code?: string; message?: string; result?: unknown }> {
  const { response } = await d.dispatch(JSON.stringify({ version: 1, method, params, op_id: "op-test0001" }), PEER);
  return response.ok ? { ok: true, result: response.result } : { ok: false, code: response.error.code, message: response.error.message };
}

const BAD_TAPS = ["", "../etc", "tap-fc-x y", "-o", "tap-fc-12345678; rm", "tap-fc-12345678\n", "tap-fc-1234567\u0000", "täp-fc-12345678", "tap-fc-１２３４５６７８", "tap-fc-" + "a".repeat(300), "eth0", "banger0", "tap-fc-12345678 master eth0"];
const BAD_IPS = ["", "../1.2.3.4", "172.16.90.2\n", "172.16.90.2 -j ACCEPT", "-o", "172.16.90.2; rm", "１７２.16.90.2", "172.16.90.2/24", "172.16.90.256", "1".repeat(300), "172.16.90.2 } ; delete table inet filter ; {"];

void test("every network method refuses injected values with bad_params and runs no command", async () => {
  const { runner, d, links } = setup();
  const cases: [string, Record<string, unknown>][] = [];
  for (const tap of BAD_TAPS) {
    cases.push(["priv.create_tap", { tap_name: tap }], ["priv.delete_tap", { tap_name: tap }], ["priv.ensure_nat", { guest_ip: "172.16.90.2", tap, enable: true }]);
  }
  for (const ip of BAD_IPS) cases.push(["priv.ensure_nat", { guest_ip: ip, tap: "tap-fc-12345678", enable: true }]);
  // Addresses that parse but are not guests of the configured network: outside it, the network address, the bridge, broadcast.
  for (const ip of ["10.0.0.2", "172.16.90.0", "172.16.90.1", "172.16.90.255", "0.0.0.0"]) cases.push(["priv.ensure_nat", { guest_ip: ip, tap: "tap-fc-12345678", enable: false }]);
  for (const bridge of ["eth0", "banger0\n", "banger0 ", "../banger0", "-o", "docker0"]) {
    cases.push(["priv.ensure_bridge", { bridge_name: bridge }]);
  }
  for (const cidr of ["10.0.0.0/8", "172.16.90.0/25", "172.16.90.0/24\n", "../24"]) cases.push(["priv.ensure_bridge", { cidr }]);
  // Wrong types and extra fields never reach a handler.
  cases.push(["priv.create_tap", { tap_name: ["tap-fc-12345678"] }], ["priv.create_tap", { tap_name: "tap-fc-12345678", user: "0" }], ["priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-12345678", enable: "yes" }], ["priv.ensure_bridge", { server_addr: "10.0.0.1:53" }], ["priv.remove_nat_all", { table: "filter" }]);
  for (const [method, params] of cases) {
    const r = await call(d, method, params);
    assert.equal(r.ok, false, `${method} ${JSON.stringify(params)} must be refused`);
    assert.equal(r.code, "bad_params", `${method} ${JSON.stringify(params)}: ${r.message ?? ""}`);
  }
  assert.deepEqual(runner.argvs(), [], "no command ran for any refused request");
  assert.deepEqual(links.calls, [], "no link was looked up or touched for any refused request");
});

void test("ensure_bridge uses the helper's own config; create_tap on a ready bridge makes an owner-owned tap without forking", async () => {
  const { runner, d, model, links } = setup();
  const r = await call(d, "priv.ensure_bridge", {});
  assert.deepEqual(r.result, { bridge: "banger0", cidr: "172.16.90.0/24", bridge_ip: "172.16.90.1", created: true, resolver: { applied: false, reason: "network.host_dns is hosts (systemd-resolved is not running; using the hosts file)" } });
  assert.deepEqual(runner.argvs().filter((a) => a[1] !== "-j"), [
    ["ip", "link", "add", "name", "banger0", "type", "bridge"],
    ["ip", "addr", "add", "172.16.90.1/24", "dev", "banger0"],
    ["ip", "link", "set", "banger0", "up"],
  ]);
  assert.equal((await call(d, "priv.ensure_bridge", { bridge_name: "banger0", cidr: "172.16.90.0/24" })).ok, true, "matching values are accepted");
  runner.calls.length = 0;
  links.calls.length = 0;
  const tap = await call(d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" });
  assert.deepEqual(tap.result, { tap: "tap-fc-0123abcd", owner_uid: 1234, bridge: "banger0" });
  assert.deepEqual(runner.argvs(), [], "a create_tap on a ready bridge forks nothing");
  assert.deepEqual(links.calls, ["bridgeState banger0", "exists tap-fc-0123abcd", "createTap tap-fc-0123abcd 1234 2345", "attachUp tap-fc-0123abcd banger0"]);
  assert.deepEqual(model.m.taps.get("tap-fc-0123abcd"), { uid: 1234, gid: 2345, master: "banger0" });
  assert.equal(model.m.up.has("tap-fc-0123abcd"), true);
  assert.deepEqual((await call(d, "priv.delete_tap", { tap_name: "tap-fc-0123abcd" })).result, { tap: "tap-fc-0123abcd", deleted: true });
  assert.deepEqual(runner.argvs(), [["ip", "link", "del", "tap-fc-0123abcd"]]);
  assert.deepEqual((await call(d, "priv.delete_tap", { tap_name: "tap-fc-0123abcd" })).result, { tap: "tap-fc-0123abcd", deleted: false }, "idempotent");
  assert.equal(runner.argvs().length, 1, "deleting a missing tap forks nothing");
});

void test("create_tap re-creates a leftover tap rather than adopting it", async () => {
  const { runner, d, model, links } = setup();
  await call(d, "priv.ensure_bridge", {});
  model.m.add("tap-pool-7");
  model.m.taps.set("tap-pool-7", { uid: 0, gid: 0, master: "docker0" });
  runner.calls.length = 0;
  links.calls.length = 0;
  assert.equal((await call(d, "priv.create_tap", { tap_name: "tap-pool-7" })).ok, true);
  assert.deepEqual(runner.argvs(), [["ip", "link", "del", "tap-pool-7"]]);
  assert.deepEqual(model.m.taps.get("tap-pool-7"), { uid: 1234, gid: 2345, master: "banger0" });
});

void test("create_tap fixes a missing, down or misaddressed bridge with ip, and only what is wrong", async () => {
  const cases: { name: string; prepare: (m: LinkModel) => void; want: string[] }[] = [
    { name: "missing", prepare: () => undefined, want: ["ip link add name banger0 type bridge", "ip addr add 172.16.90.1/24 dev banger0", "ip link set banger0 up"] },
    { name: "down", prepare: (m) => { m.add("banger0"); m.addrs.set("banger0", ["172.16.90.1/24"]); }, want: ["ip link set banger0 up"] },
    { name: "unaddressed", prepare: (m) => { m.add("banger0"); m.up.add("banger0"); }, want: ["ip addr add 172.16.90.1/24 dev banger0"] },
    { name: "other primary address", prepare: (m) => { m.add("banger0"); m.up.add("banger0"); m.addrs.set("banger0", ["10.9.9.1/24"]); }, want: ["ip addr add 172.16.90.1/24 dev banger0"] },
    { name: "wrong prefix", prepare: (m) => { m.add("banger0"); m.up.add("banger0"); m.addrs.set("banger0", ["172.16.90.1/16"]); }, want: ["ip addr add 172.16.90.1/24 dev banger0"] },
  ];
  for (const c of cases) {
    const tuned: string[] = [];
    const { runner, d, model } = setup({}, { tuneNeighbours: (bridge) => { tuned.push(bridge); return Promise.resolve(); } });
    c.prepare(model.m);
    const r = await call(d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" });
    assert.equal(r.ok, true, `${c.name}: ${r.message ?? ""}`);
    assert.deepEqual(runner.argvs().map((a) => a.join(" ")), ["ip -j addr show dev banger0", ...c.want], c.name);
    assert.deepEqual(tuned, ["banger0"], `${c.name}: the fixed bridge's ARP probing is tuned`);
    assert.equal(model.m.taps.get("tap-fc-0123abcd")?.master, "banger0", c.name);
  }
});

void test("the bridge's ARP probing is tuned once per bridge, and again when the bridge is re-created", async () => {
  const tuned: string[] = [];
  const { d, model } = setup({}, { tuneNeighbours: (bridge) => { tuned.push(bridge); return Promise.resolve(); } });
  await call(d, "priv.create_tap", { tap_name: "tap-fc-00000001" });
  await call(d, "priv.create_tap", { tap_name: "tap-fc-00000002" });
  await call(d, "priv.ensure_bridge", {});
  assert.deepEqual(tuned, ["banger0"]);
  // Someone else deletes and re-creates the bridge, correctly addressed: the sysctls went with the old one.
  model.m.links.delete("banger0");
  model.m.add("banger0");
  await call(d, "priv.create_tap", { tap_name: "tap-fc-00000003" });
  assert.deepEqual(tuned, ["banger0", "banger0"]);
});

void test("concurrent create_tap calls on a fresh host share one bridge setup instead of racing to create it", async () => {
  const tuned: string[] = [];
  const { runner, d } = setup({}, { tuneNeighbours: (bridge) => { tuned.push(bridge); return Promise.resolve(); } });
  const taps = Array.from({ length: 8 }, (_, i) => `tap-fc-0000000${i}`);
  const results = await Promise.all(taps.map((tap_name) => call(d, "priv.create_tap", { tap_name })));
  assert.deepEqual(results.map((r) => r.ok), taps.map(() => true), JSON.stringify(results.filter((r) => !r.ok)));
  assert.equal(runner.argvs().filter((a) => a.join(" ") === "ip link add name banger0 type bridge").length, 1);
  assert.ok(tuned.length >= 1 && tuned.every((b) => b === "banger0"), "the bridge's ARP probing is tuned whenever it is ensured");
});

void test("create_tap removes the tap again when attaching it to the bridge fails", async () => {
  const { runner, d, model, links } = setup();
  links.failAttach = errnoError("SIOCBRADDIF tap-fc-0123abcd to banger0", 1);
  const r = await call(d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" });
  assert.equal(r.ok, false);
  assert.equal(r.message, "SIOCBRADDIF tap-fc-0123abcd to banger0: EPERM");
  assert.ok(runner.argvs().some((a) => a.join(" ") === "ip link del tap-fc-0123abcd"));
  assert.equal(model.links.has("tap-fc-0123abcd"), false, "no half-configured tap left behind");
});

void test("create_tap reports both failures when removing the unattached tap fails too", async () => {
  const { runner, d, model, links } = setup();
  links.failAttach = errnoError("SIOCBRADDIF tap-fc-0123abcd to banger0", 1);
  runner.run = ((orig) => async (argv, options) => {
    if (argv.join(" ") === "ip link del tap-fc-0123abcd") throw new CommandError(argv, 2, null, "", "RTNETLINK answers: Device or resource busy");
    return orig(argv, options);
  })(runner.run.bind(runner));
  const r = await call(d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" });
  assert.equal(r.ok, false);
  assert.equal(r.message, "attaching tap-fc-0123abcd to banger0 failed");
  assert.equal(model.links.has("tap-fc-0123abcd"), true);
});

void test("a tap that cannot be created fails with the syscall, the name and errno", async () => {
  const { d, links } = setup();
  links.createTap = (name) => { throw errnoError(`TUNSETIFF ${name}`, 16); };
  assert.deepEqual(await call(d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" }), { ok: false, code: "internal", message: "TUNSETIFF tap-fc-0123abcd: EBUSY" });
});

void test("NAT with nftables: first guest creates the table (and owns ip_forward), last guest removes it and restores ip_forward", async () => {
  const { runner, d, model, fwd } = setup();
  const e1 = await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: true });
  assert.deepEqual(e1.result, { backend: "nftables", changed: true, ip_forward_enabled_by_banger: true });
  assert.deepEqual(fwd.writes, [true]);
  const script = String(runner.calls.find((c) => c.argv[1] === "-f")?.stdin);
  assert.match(script, /^add table ip banger$/m);
  assert.match(script, /ip saddr @guests oifname != "banger0" counter masquerade/);
  assert.match(script, /^add element ip banger guests \{ 172\.16\.90\.2 comment "tap-fc-00000001" \}$/m);
  assert.match(script, /redirect to :10053$/m, "guests' port 53 goes to banger's DNS (network.dns_listen's port)");
  assert.equal(runner.calls.every((c) => c.argv[0] !== "sh" && !c.argv.includes("-c")), true, "no shell");

  assert.equal((await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: true })).result !== undefined, true);
  assert.deepEqual((await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: true })).result, { backend: "nftables", changed: false, ip_forward_enabled_by_banger: true }, "idempotent enable");
  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.3", tap: "tap-pool-0", enable: true });
  assert.deepEqual([...model.nft.elems], [["172.16.90.2", "tap-fc-00000001"], ["172.16.90.3", "tap-pool-0"]]);

  const status = await call(d, "priv.network_status", {});
  assert.deepEqual((status.result as { nat: unknown }).nat, { backend: "nftables", guests: [{ ip: "172.16.90.2", tap: "tap-fc-00000001" }, { ip: "172.16.90.3", tap: "tap-pool-0" }], ip_forward_enabled_by_banger: true });

  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: false });
  assert.equal(model.nft.table, true, "table stays while a guest remains");
  assert.deepEqual([...model.nft.elems.keys()], ["172.16.90.3"]);
  assert.equal(fwd.on, true);
  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.3", tap: "tap-pool-0", enable: false });
  assert.equal(model.nft.table, false, "last guest gone: one delete table");
  assert.deepEqual(fwd.writes, [true, false], "ip_forward back off because banger turned it on");
  assert.equal((await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.3", tap: "tap-pool-0", enable: false })).ok, true, "idempotent disable");
});

void test("NAT: a VM's guest is added with one nft run, and a table flushed behind the helper's back is recreated", async () => {
  const { runner, d, model } = setup();
  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: true });
  const before = runner.calls.length;
  assert.deepEqual((await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.3", tap: "tap-fc-00000002", enable: true })).result, { backend: "nftables", changed: true, ip_forward_enabled_by_banger: true });
  assert.deepEqual(runner.calls.slice(before).map((c) => c.argv.join(" ")), ["nft -f -"], "no read-back of the ruleset per VM");
  // Someone flushes the ruleset: the next add fails, the helper reads the live state and recreates the table.
  model.nft.table = false;
  model.nft.elems.clear();
  model.nft.marker = false;
  const r = await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.4", tap: "tap-fc-00000003", enable: true });
  assert.equal(r.ok, true);
  assert.equal(model.nft.table, true);
  assert.deepEqual([...model.nft.elems.keys()], ["172.16.90.4"]);
  // Removing and no-op answers come from the live ruleset, not from memory.
  model.nft.elems.delete("172.16.90.4");
  assert.deepEqual((await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.4", tap: "tap-fc-00000003", enable: true })).result, { backend: "nftables", changed: true, ip_forward_enabled_by_banger: false });
  assert.deepEqual([...model.nft.elems.keys()], ["172.16.90.4"]);
});

void test("NAT: guests of VMs created together are added in shared nft runs; a failed shared run falls back to one by one", async () => {
  const { runner, d, model } = setup();
  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: true });
  const ips = [3, 4, 5, 6, 7, 8].map((n) => `172.16.90.${n}`);
  const before = runner.calls.length;
  const results = await Promise.all(ips.map((ip, i) => call(d, "priv.ensure_nat", { guest_ip: ip, tap: `tap-fc-0000001${i}`, enable: true })));
  assert.ok(results.every((r) => r.ok && (r.result as { changed: boolean }).changed), JSON.stringify(results));
  const runs = runner.calls.slice(before).filter((c) => c.argv.join(" ") === "nft -f -");
  assert.ok(runs.length <= 2, `${runs.length} nft runs for ${ips.length} guests`);
  assert.equal(runner.calls.slice(before).length, runs.length, "no read-back of the ruleset");
  assert.deepEqual([...model.nft.elems.keys()].sort(), ["172.16.90.2", ...ips].sort());

  // The table is flushed behind the helper's back: the shared run fails, every guest is still added.
  model.nft.table = false;
  model.nft.elems.clear();
  model.nft.marker = false;
  const more = ["172.16.90.20", "172.16.90.21", "172.16.90.22"];
  const again = await Promise.all(more.map((ip, i) => call(d, "priv.ensure_nat", { guest_ip: ip, tap: `tap-fc-0000002${i}`, enable: true })));
  assert.ok(again.every((r) => r.ok), JSON.stringify(again));
  assert.equal(model.nft.table, true);
  assert.deepEqual([...model.nft.elems.keys()].sort(), more);
});

void test("NAT leaves ip_forward alone when it was already on", async () => {
  const { d, fwd } = setup();
  fwd.on = true;
  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: true });
  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: false });
  assert.deepEqual(fwd.writes, []);
  assert.equal(fwd.on, true);
});

void test("a failing nft create leaves nothing behind and gives ip_forward back", async () => {
  const { runner, d, fwd } = setup();
  runner.run = ((orig) => async (argv, options) => {
    if (argv[1] === "-f" && String(options?.stdin).startsWith("add table")) throw new CommandError(argv, 1, null, "", "Error: Could not process rule: No such file or directory");
    return orig(argv, options);
  })(runner.run.bind(runner));
  const r = await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-00000001", enable: true });
  assert.equal(r.ok, false);
  assert.deepEqual(fwd.writes, [true, false]);
});

void test("host lookups of NAME.vm are routed once per bridge: a reported no-op without systemd-resolved, resolvectl (routing before the server) with it", async () => {
  const off = setup();
  const r = await call(off.d, "priv.ensure_bridge", {});
  assert.equal(r.ok, true, r.message);
  assert.deepEqual((r.result as { resolver: unknown }).resolver, { applied: false, reason: "network.host_dns is hosts (systemd-resolved is not running; using the hosts file)" });
  assert.deepEqual(off.runner.argvs().filter((a) => a[0] === "resolvectl"), []);
  const on = setup({}, { resolverUnavailable: () => undefined });
  assert.deepEqual(((await call(on.d, "priv.ensure_bridge", {})).result as { resolver: unknown }).resolver, { applied: true });
  await call(on.d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" });
  await call(on.d, "priv.ensure_bridge", {});
  assert.deepEqual(on.runner.argvs().filter((a) => a[0] === "resolvectl"), [
    ["resolvectl", "domain", "banger0", "~vm"],
    ["resolvectl", "default-route", "banger0", "no"],
    ["resolvectl", "dns", "banger0", "127.0.0.1:10053"],
  ], "once for the bridge, and no window in which its DNS server could answer every host lookup");
  const unknownPort = setup({ dns_listen: "127.0.0.1:0" }, { resolverUnavailable: () => undefined });
  assert.deepEqual(((await call(unknownPort.d, "priv.ensure_bridge", {})).result as { resolver: unknown }).resolver, { applied: false, reason: "network.host_dns is hosts (network.dns_listen 127.0.0.1:0 has no fixed port for systemd-resolved to route to; using the hosts file)" });
  const forced = setup({ dns_listen: "127.0.0.1:0", host_dns: "resolved" }, { resolverUnavailable: () => undefined });
  assert.deepEqual(((await call(forced.d, "priv.ensure_bridge", {})).result as { resolver: unknown }).resolver, { applied: false, reason: "network.dns_listen 127.0.0.1:0 has no fixed port for systemd-resolved to route to; NAME.vm resolves only by querying 127.0.0.1:0 directly" });
  const hostsMode = setup({ host_dns: "hosts" }, { resolverUnavailable: () => undefined });
  assert.deepEqual(((await call(hostsMode.d, "priv.ensure_bridge", {})).result as { resolver: unknown }).resolver, { applied: false, reason: "network.host_dns is hosts" });
  assert.deepEqual(hostsMode.runner.argvs().filter((a) => a[0] === "resolvectl"), [], "the hosts file mode leaves systemd-resolved alone");
  const failing = setup({}, { resolverUnavailable: () => undefined });
  failing.runner.run = ((orig) => async (argv, options) => {
    if (argv[0] === "resolvectl") throw new CommandError(argv, 1, null, "", "Failed to set DNS configuration: Unit dbus-org.freedesktop.resolve1.service not found.");
    return orig(argv, options);
  })(failing.runner.run.bind(failing.runner));
  const f = await call(failing.d, "priv.ensure_bridge", {});
  assert.equal(f.ok, true, "a resolver failure costs host lookups only, not the bridge");
  assert.match(JSON.stringify((f.result as { resolver: unknown }).resolver), /"applied":false,"reason":".*resolvectl domain banger0 ~vm.*NAME.vm resolves only by querying 127.0.0.1:10053 directly/);
});

/** Taps of another banger install on the same host: same names, its own bridge or owner. */
function plantForeignTaps(model: ReturnType<typeof hostModel>): void {
  model.m.add("other0");
  model.m.add("tap-fc-0000f0f0");
  model.m.taps.set("tap-fc-0000f0f0", { uid: 1234, gid: 2345, master: "other0" });
  model.m.add("tap-fc-0000f1f1");
  model.m.taps.set("tap-fc-0000f1f1", { uid: 999, gid: 999 });
}

void test("network status lists this install's taps only: on its bridge, or on none and owned by its owner", async () => {
  const { d, model } = setup();
  await call(d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" });
  model.m.add("tap-fc-0000aaaa");
  model.m.taps.set("tap-fc-0000aaaa", { uid: 1234, gid: 2345 });
  plantForeignTaps(model);
  const r = await call(d, "priv.network_status", {});
  assert.deepEqual((r.result as { taps: string[] }).taps, ["tap-fc-0000aaaa", "tap-fc-0123abcd"]);
});

void test("remove_nat_all removes banger's NAT and nothing else", async () => {
  const { d, model } = setup();
  await call(d, "priv.create_tap", { tap_name: "tap-fc-0123abcd" });
  await call(d, "priv.ensure_nat", { guest_ip: "172.16.90.2", tap: "tap-fc-0123abcd", enable: true });
  plantForeignTaps(model);
  const links = [...model.links.keys()].sort();
  const r = await call(d, "priv.remove_nat_all", {});
  assert.equal(r.ok, true, r.message);
  assert.deepEqual(r.result, { removed: ["nftables"] });
  assert.equal(model.nft.table, false);
  assert.deepEqual([...model.links.keys()].sort(), links, "taps and bridge are left alone");
});

void test("sync_hosts: entries are VM names and guest addresses of the bridge; a no-op unless the host DNS mode is the hosts file", async () => {
  const resolved = setup({}, { resolverUnavailable: () => undefined });
  assert.deepEqual((await call(resolved.d, "priv.sync_hosts", { entries: [{ name: "web", ip: "172.16.90.2" }] })).result, { mode: "resolved", written: false, entries: 1 });
  const none = setup({ host_dns: "none" });
  assert.deepEqual((await call(none.d, "priv.sync_hosts", { entries: [] })).result, { mode: "none", written: false, entries: 0 });
  for (const entry of [{ name: "Web", ip: "172.16.90.2" }, { name: "web\n10.0.0.1 evil", ip: "172.16.90.2" }, { name: "web", ip: "172.16.90.1" }, { name: "web", ip: "10.0.0.2" }, { name: "web", ip: "172.16.90.2 x" }]) {
    const r = await call(none.d, "priv.sync_hosts", { entries: [entry] });
    assert.equal(r.code, "bad_params", JSON.stringify(entry));
    assert.match(r.message ?? "", /entries\[0\]\.(name|ip)/);
  }
  assert.equal((await call(none.d, "priv.sync_hosts", { entries: [{ name: "web", ip: "172.16.90.2", extra: 1 }] })).code, "bad_params", "unknown fields");
  const status = await call(none.d, "priv.network_status", {});
  assert.deepEqual((status.result as { host_dns: unknown }).host_dns, { mode: "none", reason: "network.host_dns is none: NAME.vm resolves on the host only by querying banger's DNS directly" });
});
