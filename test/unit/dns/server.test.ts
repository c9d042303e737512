import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { test } from "node:test";
import dnsPacket from "dns-packet";
import { answerQuery, RECORD_TTL_S } from "../../../src/daemon/dns/answer.js";
import { createServer } from "node:net";
import { Forwarder } from "../../../src/daemon/dns/forward.js";
import { answersClient, DnsServer } from "../../../src/daemon/dns/server.js";
import { silentLogger } from "../../../src/system/log.js";

type RecordType = dnsPacket.RecordType;
/** dns-packet decodes these too; its typings just do not declare them. */
type Decoded = dnsPacket.DecodedPacket & { rcode?: string; flag_aa?: boolean; flag_rd?: boolean };
type AnswerOut = { type: string; name: string; data?: unknown; ttl?: number };
const decode = (b: Buffer): Decoded => dnsPacket.decode(b);

function query(name: string, type: RecordType = "A", id = 4242): Buffer {
  return dnsPacket.encode({ type: "query", id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name, class: "IN" }] });
}

function udpAsk(addr: string, msg: Buffer, timeoutMs = 1000): Promise<Decoded | undefined> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    const timer = setTimeout(() => { s.close(); resolve(undefined); }, timeoutMs);
    s.once("message", (m) => { clearTimeout(timer); s.close(); try { resolve(decode(m)); } catch (e) { reject(e instanceof Error ? e : new Error(String(e))); } });
    s.send(msg, port, host);
  });
}

function tcpAsk(addr: string, frames: Buffer, expect: number): Promise<Decoded[]> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(":")), Number(addr.slice(addr.lastIndexOf(":") + 1))];
  return new Promise((resolve, reject) => {
    const sock = connect({ host, port });
    let buf = Buffer.alloc(0);
    const out: Decoded[] = [];
    sock.on("connect", () => sock.write(frames));
    sock.on("error", reject);
    sock.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(decode(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length === expect) { sock.destroy(); resolve(out); }
    });
    sock.on("close", () => { if (out.length !== expect) reject(new Error(`connection closed after ${out.length}/${expect} answers`)); });
  });
}

function frame(msg: Buffer): Buffer {
  const f = Buffer.alloc(2 + msg.length);
  f.writeUInt16BE(msg.length, 0);
  msg.copy(f, 2);
  return f;
}

const lookup = (n: string): string | undefined => (n === "web" ? "172.16.90.2" : undefined);

void test("answerQuery: A for NAME.vm (case-insensitive), NXDOMAIN under .vm, REFUSED elsewhere, NOERROR-empty for AAAA", () => {
  const a = decode(answerQuery(query("Web.VM"), lookup) ?? Buffer.alloc(0));
  assert.equal(a.id, 4242);
  assert.equal(a.type, "response");
  assert.equal(a.rcode, "NOERROR");
  assert.equal(a.flag_aa, true);
  assert.equal(a.flag_rd, true, "RD echoed");
  assert.deepEqual((a.answers as AnswerOut[] | undefined)?.map((x) => [x.type, x.name, x.data, x.ttl]), [["A", "Web.VM", "172.16.90.2", RECORD_TTL_S]]);
  assert.equal(decode(answerQuery(query("nope.vm"), lookup) ?? Buffer.alloc(0)).rcode, "NXDOMAIN");
  assert.equal(decode(answerQuery(query("a.web.vm"), lookup) ?? Buffer.alloc(0)).rcode, "NXDOMAIN");
  assert.equal(decode(answerQuery(query("example.com"), lookup) ?? Buffer.alloc(0)).rcode, "REFUSED");
  assert.equal(decode(answerQuery(query("webvm"), lookup) ?? Buffer.alloc(0)).rcode, "REFUSED", "suffix must be a whole label");
  const aaaa = decode(answerQuery(query("web.vm", "AAAA"), lookup) ?? Buffer.alloc(0));
  assert.equal(aaaa.rcode, "NOERROR");
  assert.equal(aaaa.answers?.length, 0);
  assert.equal(decode(answerQuery(query("nope.vm", "AAAA"), lookup) ?? Buffer.alloc(0)).rcode, "NXDOMAIN");
});

void test("answerQuery drops garbage and responses, FORMERR for zero questions", () => {
  for (const junk of [Buffer.alloc(0), Buffer.from([1]), Buffer.from("hello world, not dns"), Buffer.alloc(12, 0xff), Buffer.concat([query("web.vm").subarray(0, 20)])]) {
    const out = answerQuery(junk, lookup);
    if (out !== undefined) assert.notEqual(decode(out).rcode, "NOERROR", `garbage ${junk.toString("hex")} must not get a normal answer`);
  }
  const resp = dnsPacket.encode({ type: "response", id: 1, questions: [{ type: "A", name: "web.vm", class: "IN" }] });
  assert.equal(answerQuery(resp, lookup), undefined, "responses are never answered (no loops)");
  const noq = dnsPacket.encode({ type: "query", id: 7, questions: [] });
  assert.equal(decode(answerQuery(noq, lookup) ?? Buffer.alloc(0)).rcode, "FORMERR");
});

void test("DnsServer over UDP and TCP: records follow setRecords/publish/unpublish; garbage never kills it", async (t) => {
  const server = new DnsServer(silentLogger);
  t.after(async () => { await server.close(); });
  const addr = await server.start("127.0.0.1:0");
  assert.match(addr, /^127\.0\.0\.1:[1-9][0-9]*$/);

  server.setRecords(new Map([["web", "172.16.90.2"], ["DB", "172.16.90.3"]]));
  const a = await udpAsk(addr, query("web.vm"));
  assert.equal((a?.answers?.[0] as { data?: unknown } | undefined)?.data, "172.16.90.2");
  assert.equal((await udpAsk(addr, query("db.vm")))?.answers?.length, 1, "names are case-normalized");
  assert.equal((await udpAsk(addr, query("gone.vm")))?.rcode, "NXDOMAIN");
  assert.equal((await udpAsk(addr, query("example.org")))?.rcode, "REFUSED");

  // Garbage over UDP: no answer, and the server still serves the next query.
  for (let i = 0; i < 50; i++) {
    const junk = Buffer.from(Array.from({ length: (i * 7) % 300 }, (_, j) => (i * 31 + j * 17) % 256));
    await udpAsk(addr, junk, 20);
  }
  assert.equal((await udpAsk(addr, query("web.vm")))?.rcode, "NOERROR");

  // TCP: two queries in one write, answered in order on the same connection.
  const [t1, t2] = await tcpAsk(addr, Buffer.concat([frame(query("web.vm", "A", 1)), frame(query("nope.vm", "A", 2))]), 2);
  assert.equal(t1?.id, 1);
  assert.equal((t1?.answers?.[0] as { data?: unknown } | undefined)?.data, "172.16.90.2");
  assert.equal(t2?.id, 2);
  assert.equal(t2?.rcode, "NXDOMAIN");
  // TCP garbage closes that connection only.
  await assert.rejects(tcpAsk(addr, frame(Buffer.from("garbage!")), 1), /closed/);

  await server.unpublish("web");
  assert.equal((await udpAsk(addr, query("web.vm")))?.rcode, "NXDOMAIN", "unpublished at once");
  await server.publish("web", "172.16.90.9");
  assert.equal((((await udpAsk(addr, query("web.vm")))?.answers?.[0]) as { data?: unknown } | undefined)?.data, "172.16.90.9");
  server.setRecords({});
  assert.equal((await udpAsk(addr, query("db.vm")))?.rcode, "NXDOMAIN", "setRecords replaces everything");
  assert.throws(() => { server.setRecords({ "bad name": "1.2.3.4" }); }, /cannot be a DNS label/);
  assert.throws(() => { server.setRecords({ ok: "1.2.3.400" }); }, /not an IPv4/);
});

void test("DnsServer refuses a bad listen address and reports a port in use", async (t) => {
  const s1 = new DnsServer(silentLogger);
  t.after(async () => { await s1.close(); });
  await assert.rejects(s1.start("localhost:53"), /not IPv4:PORT/);
  const addr = await s1.start("127.0.0.1:0");
  const s2 = new DnsServer(silentLogger);
  t.after(async () => { await s2.close(); });
  await assert.rejects(s2.start(addr), /EADDRINUSE/);
});

/**
 * A fake upstream resolver on loopback (UDP and TCP on one port): answers every A query with 198.51.100.7
 * (the query's id and flags kept), or, per `mode`, stays silent or answers with another id first.
 */
async function fakeUpstream(t: { after: (fn: () => Promise<void>) => void }, mode: "answer" | "silent" | "wrong-id-first" = "answer"): Promise<{ port: number; seen: number[] }> {
  const seen: number[] = [];
  const reply = (q: Buffer): Buffer => {
    const req = decode(q);
    seen.push(req.id ?? -1);
    return dnsPacket.encode({ type: "response", id: req.id ?? 0, flags: (req.flags ?? 0) | dnsPacket.RECURSION_AVAILABLE, questions: req.questions ?? [], answers: [{ type: "A", class: "IN", name: req.questions?.[0]?.name ?? "", ttl: 60, data: "198.51.100.7" }] });
  };
  const tcp = createServer((sock) => {
    let buf = Buffer.alloc(0);
    sock.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) sock.end(frame(reply(buf.subarray(2, 2 + buf.readUInt16BE(0)))));
    });
  });
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  const port = (tcp.address() as { port: number }).port;
  const udp = createSocket("udp4");
  await new Promise<void>((r) => udp.bind(port, "127.0.0.1", r));
  udp.on("message", (m, rinfo) => {
    if (mode === "silent") {
      seen.push(decode(m).id ?? -1);
      return;
    }
    const out = reply(m);
    if (mode === "wrong-id-first") {
      const spoof = Buffer.from(out);
      spoof.writeUInt16BE((out.readUInt16BE(0) + 1) % 65536, 0);
      spoof.writeUInt8(1, spoof.length - 1); // 198.51.100.1: an answer that must not be taken
      udp.send(spoof, rinfo.port, rinfo.address);
    }
    udp.send(out, rinfo.port, rinfo.address);
  });
  t.after(async () => {
    await new Promise<void>((r) => { udp.close(() => { r(); }); });
    await new Promise<void>((r) => { tcp.close(() => { r(); }); });
  });
  return { port, seen };
}

const firstA = (d: Decoded | undefined): unknown => (d?.answers?.[0] as { data?: unknown } | undefined)?.data;

void test("names outside .vm are forwarded upstream over UDP and TCP with the client's id; .vm names never leave", async (t) => {
  const up = await fakeUpstream(t);
  const server = new DnsServer(silentLogger, { upstreams: [{ host: "127.0.0.1", port: up.port }], guestCidr: "172.16.90.0/24" });
  t.after(async () => { await server.close(); });
  const addr = await server.start("127.0.0.1:0");
  await server.publish("web", "172.16.90.2");
  const u = await udpAsk(addr, query("example.com", "A", 777));
  assert.equal(u?.id, 777, "the client's id comes back");
  assert.equal(u?.rcode, "NOERROR");
  assert.equal(firstA(u), "198.51.100.7", "the upstream's answer");
  assert.equal(u?.flag_rd, true, "the client's flags travelled with the query");
  const [tc] = await tcpAsk(addr, frame(query("example.org", "A", 778)), 1);
  assert.equal(tc?.id, 778);
  assert.equal(firstA(tc), "198.51.100.7");
  assert.deepEqual(up.seen, [777, 778], "the upstream saw each query once, with the client's id");
  assert.equal(firstA(await udpAsk(addr, query("web.vm"))), "172.16.90.2");
  assert.equal((await udpAsk(addr, query("nope.vm")))?.rcode, "NXDOMAIN");
  // A local answer queued behind a forwarded one on the same TCP connection keeps its order.
  const [f1, f2] = await tcpAsk(addr, Buffer.concat([frame(query("example.net", "A", 1)), frame(query("web.vm", "A", 2))]), 2);
  assert.deepEqual([f1?.id, f2?.id], [1, 2]);
  assert.deepEqual(up.seen, [777, 778, 1], "no .vm query went upstream");
});

void test("forwarding: a silent upstream times out and the next one answers; a reply with another id is not taken", async (t) => {
  const silent = await fakeUpstream(t, "silent");
  const tricky = await fakeUpstream(t, "wrong-id-first");
  const fwd = new Forwarder([{ host: "127.0.0.1", port: silent.port }, { host: "127.0.0.1", port: tricky.port }], 300);
  const t0 = performance.now();
  const out = await fwd.udp(query("example.com", "A", 4321));
  assert.ok(performance.now() - t0 >= 290, "the silent upstream had its timeout");
  const d = decode(out ?? Buffer.alloc(0));
  assert.equal(d.id, 4321);
  assert.equal(firstA(d), "198.51.100.7", "the spoofed reply (other id) was ignored");
  assert.deepEqual(silent.seen, [4321]);
  const server = new DnsServer(silentLogger, { upstreams: [{ host: "127.0.0.1", port: silent.port }], forwardTimeoutMs: 100 });
  t.after(async () => { await server.close(); });
  const failed = await udpAsk(await server.start("127.0.0.1:0"), query("example.com", "A", 55));
  assert.deepEqual([failed?.id, failed?.rcode], [55, "SERVFAIL"], "no upstream answered: the client hears so at once");
  assert.equal(await new Forwarder([{ host: "127.0.0.1", port: silent.port }], 100).udp(query("example.com")), undefined, "no upstream answered: nothing to relay");
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const closedPort = (closed.address() as { port: number }).port;
  await new Promise<void>((r) => closed.close(() => { r(); }));
  assert.equal(await new Forwarder([{ host: "127.0.0.1", port: closedPort }], 100).tcp(query("example.com")), undefined, "TCP: the upstream refused the connection");
  assert.equal(decode((await new Forwarder([{ host: "127.0.0.1", port: closedPort }, { host: "127.0.0.1", port: tricky.port }], 100).tcp(query("example.com", "A", 99))) ?? Buffer.alloc(0)).id, 99, "TCP: the next upstream answers");
});

void test("without upstreams names outside .vm stay REFUSED; only loopback and the bridge network are answered", async (t) => {
  const server = new DnsServer(silentLogger);
  t.after(async () => { await server.close(); });
  const addr = await server.start("127.0.0.1:0");
  assert.equal((await udpAsk(addr, query("example.com")))?.rcode, "REFUSED");
  assert.equal(answersClient("127.0.0.1", undefined), true);
  assert.equal(answersClient("::ffff:127.0.0.5", "172.16.90.0/24"), true);
  assert.equal(answersClient("172.16.90.7", "172.16.90.0/24"), true);
  assert.equal(answersClient("172.16.91.7", "172.16.90.0/24"), false, "a neighbouring network");
  assert.equal(answersClient("10.0.0.1", "172.16.90.0/24"), false);
  assert.equal(answersClient("172.16.90.7", undefined), false, "no bridge network configured");
  assert.equal(answersClient("::1", "172.16.90.0/24"), false, "IPv6 is not served");
});

void test("listenForGuests binds the bridge address at the main port once it exists, and is a no-op after", async (t) => {
  const server = new DnsServer(silentLogger);
  t.after(async () => { await server.close(); });
  const addr = await server.start("127.0.0.1:0");
  const port = addr.slice(addr.lastIndexOf(":") + 1);
  assert.equal(await server.listenForGuests("192.0.2.1"), false, "an address this host does not have yet");
  assert.equal(server.guestListenAddress(), undefined);
  assert.equal(await server.listenForGuests("127.0.0.2"), true);
  assert.equal(server.guestListenAddress(), `127.0.0.2:${port}`);
  assert.equal(await server.listenForGuests("127.0.0.2"), true);
  await server.publish("web", "172.16.90.2");
  assert.equal(firstA(await udpAsk(`127.0.0.2:${port}`, query("web.vm"))), "172.16.90.2");
});

void test("egress gate: a policed client gets REFUSED for names it may not reach (never relayed) and an allowed answer only once it is learned", async (t) => {
  const up = await fakeUpstream(t);
  const events: string[] = [];
  const gate = (client: string): { allows: (n: string) => boolean; learn: (r: Buffer) => Promise<void> } | undefined => client !== "127.0.0.1" ? undefined : {
    allows: (n) => n === "example.com" || n.endsWith(".example.com"),
    learn: async (reply) => {
      events.push(`learn ${String(firstA(decode(reply)))}`);
      await new Promise((r) => setTimeout(r, 50));
      events.push("learned");
    },
  };
  const server = new DnsServer(silentLogger, { upstreams: [{ host: "127.0.0.1", port: up.port }], egress: gate });
  t.after(async () => { await server.close(); });
  const addr = await server.start("127.0.0.1:0");
  const refusedUdp = await udpAsk(addr, query("evil.org", "A", 9));
  assert.deepEqual([refusedUdp?.id, refusedUdp?.rcode], [9, "REFUSED"]);
  const [refusedTcp] = await tcpAsk(addr, frame(query("example.com.evil.org", "A", 10)), 1);
  assert.equal(refusedTcp?.rcode, "REFUSED", "a suffix match must be on a label boundary of the allowed name");
  assert.deepEqual(up.seen, [], "refused names never reached the upstream");
  const ok = await udpAsk(addr, query("API.Example.com", "A", 11));
  events.push("answered");
  assert.equal(firstA(ok), "198.51.100.7");
  assert.deepEqual(events, ["learn 198.51.100.7", "learned", "answered"], "the answer waited for the learn");
});

void test("egress gate: a learn that fails answers SERVFAIL, not an address the guest cannot reach", async (t) => {
  const up = await fakeUpstream(t);
  const server = new DnsServer(silentLogger, { upstreams: [{ host: "127.0.0.1", port: up.port }], egress: () => ({ allows: () => true, learn: () => Promise.reject(new Error("helper down")) }) });
  t.after(async () => { await server.close(); });
  const addr = await server.start("127.0.0.1:0");
  assert.equal((await udpAsk(addr, query("example.com", "A", 12)))?.rcode, "SERVFAIL");
});
