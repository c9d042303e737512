import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { parsePortSpec } from "../../../src/model/port-spec.js";
import { holdersFromSs } from "../../../src/roothelper/ports/host-port-check.js";
import { PortsManager } from "../../../src/roothelper/ports/manager.js";
import { nftPortsChangeScript, parseNftPorts, type PortsBackend } from "../../../src/roothelper/ports/nftables.js";
import type { PublishedPort } from "../../../src/roothelper/ports/types.js";
import { openDatabase } from "../../../src/state/database.js";
import { addPorts, listPorts, portsByVm, removePorts } from "../../../src/state/ports.js";
import { VmRepository } from "../../../src/state/vms.js";

void test("-p specs: defaults to 127.0.0.1 and tcp; bad ones say what a good one looks like", () => {
  assert.deepEqual(parsePortSpec("8080:80"), { hostIp: "127.0.0.1", hostPort: 8080, guestPort: 80, proto: "tcp" });
  assert.deepEqual(parsePortSpec("192.0.2.10:53:5353/udp"), { hostIp: "192.0.2.10", hostPort: 53, guestPort: 5353, proto: "udp" });
  for (const bad of ["80", "0:80", "8080:0", "70000:80", "8080:80/sctp", "1.2.3.256:80:80", "0.0.0.0:80:80", " 8080:80", "8080:80\n", "a:80:80", "[::1]:80:80", "01.2.3.4:80:80"]) {
    const r = parsePortSpec(bad);
    assert.equal(typeof r, "string", `${JSON.stringify(bad)} must be refused`);
  }
  const why = parsePortSpec("80");
  assert.ok(typeof why === "string");
  assert.match(why, /want \[HOST_IP:\]HOST_PORT:GUEST_PORT\[\/tcp\|\/udp\]/);
});

const port = (hostPort: number, guestIp = "172.16.0.2", tap = "tap-fc-00000002"): PublishedPort => ({ hostIp: "127.0.0.1", hostPort, proto: "tcp", guestIp, guestPort: 80, tap });

void test("nft: element scripts and the map listing round-trip", () => {
  assert.equal(nftPortsChangeScript([port(8080)], [port(9090)]), "delete element ip banger_ports published { 127.0.0.1 . tcp . 9090 }\nadd element ip banger_ports published { 127.0.0.1 . tcp . 8080 comment \"tap-fc-00000002\" : 172.16.0.2 . 80 }\n");
  // As nft 1.0.6 prints `nft -j list map ip banger_ports published`.
  const json = `{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"map": {"family": "ip", "name": "published", "table": "banger_ports", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 1, "map": "ipv4_addr . inet_service", "elem": [[{"elem": {"val": {"concat": ["127.0.0.1", "tcp", 8080]}, "comment": "tap-fc-00000002"}}, {"concat": ["172.16.0.2", 80]}]]}}]}`;
  assert.deepEqual(parseNftPorts(json), [port(8080)]);
});

void test("ss holders: the process on the address or a wildcard of that port, not other ports", () => {
  const text = [
    `LISTEN 0 511 127.0.0.1:8080 0.0.0.0:* users:(("node",pid=321,fd=20))`,
    `LISTEN 0 511 0.0.0.0:18080 0.0.0.0:* users:(("nginx",pid=9,fd=6))`,
    `LISTEN 0 511 10.0.0.1:8080 0.0.0.0:* users:(("other",pid=7,fd=6))`,
  ].join("\n");
  assert.deepEqual(holdersFromSs(text, "127.0.0.1", 8080), ["node (pid 321)"]);
  assert.deepEqual(holdersFromSs(text, "127.0.0.1", 18080), ["nginx (pid 9)"]);
});

/** A backend over an in-memory map, recording each change. */
function fakeBackend(): PortsBackend & { table: PublishedPort[] | undefined; changes: string[] } {
  const b = {
    kind: "nftables" as const,
    table: undefined as PublishedPort[] | undefined,
    changes: [] as string[],
    list: () => Promise.resolve(b.table === undefined ? undefined : [...b.table]),
    change: (_bridge: string, create: boolean, add: readonly PublishedPort[], remove: readonly PublishedPort[]) => {
      b.changes.push(`${create ? "create " : ""}+${add.length} -${remove.length}`);
      b.table = [...(b.table ?? []).filter((p) => !remove.some((r) => r.hostPort === p.hostPort)), ...add];
      return Promise.resolve();
    },
    removeAll: () => { b.changes.push("drop"); b.table = undefined; return Promise.resolve(); },
  };
  return b;
}

void test("ports manager: replaces one guest's set, refuses another guest's port or a busy host socket, and drops the table with the last port", async () => {
  const b = fakeBackend();
  const localnet: boolean[] = [];
  const busy = new Set([7000]);
  const m = new PortsManager(b, "banger0", {
    mustBeFree: (_ip, p) => (busy.has(p) ? Promise.reject(new Error(`port ${p} in use by sshd (pid 1)`)) : Promise.resolve()),
    routeLocalnet: (_bridge, on) => { localnet.push(on); return Promise.resolve(); },
  });
  await m.set("172.16.0.2", [port(8080), port(8081)]);
  await m.set("172.16.0.2", [port(8080), port(8081)]);
  await assert.rejects(m.set("172.16.0.3", [port(8080, "172.16.0.3", "tap-fc-00000003")]), /127\.0\.0\.1:8080\/tcp is already published to 172\.16\.0\.2:80 \(tap-fc-00000002\)/);
  await assert.rejects(m.set("172.16.0.3", [port(7000, "172.16.0.3", "tap-fc-00000003")]), /in use by sshd/);
  await assert.rejects(m.set("172.16.0.3", [port(9000, "172.16.0.3"), port(9000, "172.16.0.3")]), /listed twice/);
  await m.set("172.16.0.2", [port(8081)]);
  await m.set("172.16.0.2", []);
  await m.set("172.16.0.2", []);
  assert.deepEqual(b.changes, ["create +2 -0", "+0 -1", "drop"]);
  assert.deepEqual(localnet, [true, false]);
  assert.equal(b.table, undefined);
});

void test("port records: one VM per host port, named in the error; all or none; gone with the VM", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "bgt-ports-"));
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  const db = openDatabase(join(dir, "banger.db"));
  t.after(() => { db.close(); });
  db.prepare("INSERT INTO images (name, source, kernel_path, rootfs_path, size_bytes, created_at) VALUES ('tiny', 'busybox', '/k', '/r', 1, 'now')").run();
  const vms = new VmRepository(db);
  const a = vms.insert({ id: "a".repeat(32), name: "web", image: "tiny", vcpus: 1, memoryMib: 128, diskGib: 1, vmm: "qemu" });
  const b = vms.insert({ id: "b".repeat(32), name: "api", image: "tiny", vcpus: 1, memoryMib: 128, diskGib: 1, vmm: "qemu" });
  const nameOf = (id: string): string => vms.getById(id)?.name ?? id;
  const spec = (hostPort: number) => ({ hostIp: "127.0.0.1", hostPort, guestPort: 80, proto: "tcp" as const });
  assert.equal(addPorts(db, a.id, [spec(8080)], nameOf).length, 1);
  assert.equal(addPorts(db, a.id, [spec(8080)], nameOf).length, 0, "adding the same again is a no-op");
  assert.throws(() => addPorts(db, b.id, [spec(9090), spec(8080)], nameOf), /127\.0\.0\.1:8080\/tcp is already published by VM "web"/);
  assert.deepEqual(listPorts(db, b.id), [], "all or none");
  assert.deepEqual(removePorts(db, a.id, [spec(9999)]), []);
  addPorts(db, b.id, [spec(9090)], nameOf);
  addPorts(db, a.id, [spec(7070)], nameOf);
  const bulk = portsByVm(db);
  for (const id of [a.id, b.id, "c".repeat(32)]) assert.deepEqual(bulk(id), listPorts(db, id), "vm list's one-query read agrees with the per-VM one");
  removePorts(db, a.id, [spec(7070)]);
  vms.delete(b.id);
  assert.deepEqual(db.prepare("SELECT COUNT(*) AS n FROM vm_ports WHERE vm_id = ?").get(b.id), { n: 0 });
  assert.deepEqual(listPorts(db, a.id), [spec(8080)]);
});
