import assert from "node:assert/strict";
import { createSocket } from "node:dgram";
import { connect } from "node:net";
import { test } from "node:test";
import dnsPacket from "dns-packet";
import { answerQuery, RECORD_TTL_S } from "../../../src/daemon/dns/answer.js";
import { DnsServer } from "../../../src/daemon/dns/server.js";
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
