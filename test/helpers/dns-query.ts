import { createSocket } from "node:dgram";
import dnsPacket from "dns-packet";
import { systemRunner, runText } from "../../src/system/runner.js";
import type { NetNs } from "./netns.js";

// A one-shot DNS A query, run inside the namespace where the daemon listens.
const QUERY = `
const dgram = require("node:dgram");
const [addr, name] = process.argv.slice(1);
const i = addr.lastIndexOf(":");
const q = Buffer.alloc(12 + name.length + 6);
q.writeUInt16BE(0x1234, 0); q.writeUInt16BE(0x0100, 2); q.writeUInt16BE(1, 4);
let o = 12; for (const part of name.split(".")) { q[o++] = part.length; q.write(part, o, "ascii"); o += part.length; }
q[o++] = 0; q.writeUInt16BE(1, o); q.writeUInt16BE(1, o + 2);
const s = dgram.createSocket("udp4");
const t = setTimeout(() => { console.log("TIMEOUT"); process.exit(1); }, 3000);
s.on("message", (m) => {
  clearTimeout(t);
  const rcode = m.readUInt16BE(2) & 15, an = m.readUInt16BE(6);
  let p = 12; while (m[p] !== 0) p += m[p] + 1; p += 5;
  const ips = [];
  const skipName = () => { while (true) { const b = m[p]; if (b === 0) { p += 1; return; } if ((b & 0xc0) === 0xc0) { p += 2; return; } p += b + 1; } };
  for (let k = 0; k < an; k++) { skipName(); const type = m.readUInt16BE(p); p += 8; const len = m.readUInt16BE(p); p += 2; if (type === 1) ips.push([...m.subarray(p, p + 4)].join(".")); p += len; }
  console.log(JSON.stringify({ rcode, ips })); s.close();
});
s.send(q, Number(addr.slice(i + 1)), addr.slice(0, i));
`;

/** Resolves `name` against banger's DNS at `addr` from inside `ns`: rcode 0 = NOERROR, 3 = NXDOMAIN, 5 = REFUSED. */
export async function queryA(ns: NetNs, addr: string, name: string): Promise<{ rcode: number; ips: string[] }> {
  const out = await runText(systemRunner, ns.exec([process.execPath, "-e", QUERY, addr, name]));
  return JSON.parse(out) as { rcode: number; ips: string[] };
}

/** The same query from this process (when the server is reachable from here): rcode name and A records. */
export function resolveA(addr: string, name: string): Promise<{ rcode: string; ips: string[] }> {
  const i = addr.lastIndexOf(":");
  return new Promise((resolve, reject) => {
    const s = createSocket("udp4");
    const timer = setTimeout(() => { s.close(); reject(new Error("dns timeout")); }, 2000);
    s.once("message", (m) => {
      clearTimeout(timer);
      s.close();
      const p = dnsPacket.decode(m) as dnsPacket.DecodedPacket & { rcode?: string };
      resolve({ rcode: p.rcode ?? "", ips: (p.answers ?? []).flatMap((a) => (a.type === "A" ? [a.data] : [])) });
    });
    s.send(dnsPacket.encode({ type: "query", id: 9, questions: [{ type: "A", name, class: "IN" }] }), Number(addr.slice(i + 1)), addr.slice(0, i));
  });
}
