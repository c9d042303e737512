import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../../system/log.js";
import type { DnsDeps } from "../vm/deps.js";
import { answerQuery, normalizeName } from "./answer.js";

/** A TCP client gets this long between messages before the connection is closed. */
const TCP_IDLE_MS = 10_000;
/** DNS over TCP frames are at most 64 KiB; anything buffered beyond that is an attack or a bug. */
const TCP_MAX_BUFFER = 65_537;

const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

/**
 * banger's authoritative server for the `vm` zone, inside bangerd: UDP and
 * TCP on one address (network.dns_listen). The lifecycle keeps the records
 * in sync with running VMs (setRecords / publish / unpublish). Malformed
 * packets are dropped; no input can throw out of a socket handler.
 */
export class DnsServer implements DnsDeps {
  private records = new Map<string, string>();
  private udp: UdpSocket | undefined;
  private tcp: Server | undefined;
  private readonly conns = new Set<Socket>();
  private bound = "";

  constructor(private readonly logger: Logger) {}

  /** Replaces every record: VM name (without `.vm`) -> IPv4. */
  setRecords(records: ReadonlyMap<string, string> | Readonly<Record<string, string>>): void {
    const next = new Map<string, string>();
    const entries: Iterable<[string, string]> = records instanceof Map ? (records as ReadonlyMap<string, string>).entries() : Object.entries(records as Readonly<Record<string, string>>);
    for (const [name, ip] of entries) next.set(checkName(name), checkIp(ip));
    this.records = next;
  }

  publish(name: string, ip: string): Promise<void> {
    this.records.set(checkName(name), checkIp(ip));
    return Promise.resolve();
  }

  unpublish(name: string): Promise<void> {
    this.records.delete(normalizeName(name));
    return Promise.resolve();
  }

  lookup(name: string): string | undefined {
    return this.records.get(normalizeName(name));
  }

  /** "IP:PORT" actually bound (port 0 in the listen address picks a free one, used by tests). */
  address(): string {
    return this.bound;
  }

  async start(listen: string): Promise<string> {
    const idx = listen.lastIndexOf(":");
    const host = listen.slice(0, idx);
    const port = Number(listen.slice(idx + 1));
    if (idx <= 0 || !IPV4_RE.test(host) || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`dns listen address ${JSON.stringify(listen)} is not IPv4:PORT`);
    const lookup = (n: string): string | undefined => this.records.get(n);

    const tcp = createServer((sock) => { this.serveTcp(sock, lookup); });
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", reject);
      tcp.listen({ host, port, exclusive: true }, () => { tcp.off("error", reject); resolve(); });
    });
    const tcpPort = (tcp.address() as { port: number }).port;
    // UDP takes the TCP port, so with port 0 both transports share one number.
    const udp = createSocket({ type: "udp4" });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind({ address: host, port: tcpPort, exclusive: true }, () => { udp.off("error", reject); resolve(); });
      });
    } catch (e) {
      tcp.close();
      throw new Error(`cannot listen for DNS on udp ${host}:${tcpPort}: ${(e as Error).message}; change network.dns_listen`, { cause: e });
    }
    udp.on("message", (msg, rinfo) => {
      const out = safeAnswer(msg, lookup, this.logger);
      if (out !== undefined) udp.send(out, rinfo.port, rinfo.address);
    });
    udp.on("error", (e) => { this.logger.warn("dns udp socket error", { error: e.message }); });
    this.udp = udp;
    this.tcp = tcp;
    this.bound = `${host}:${tcpPort}`;
    return this.bound;
  }

  private serveTcp(sock: Socket, lookup: (n: string) => string | undefined): void {
    this.conns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on("close", () => this.conns.delete(sock));
    sock.on("error", () => sock.destroy());
    let buf = Buffer.alloc(0);
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > TCP_MAX_BUFFER) {
        sock.destroy();
        return;
      }
      // RFC 1035 4.2.2: each message is prefixed with its 2-byte length; several may arrive in one chunk.
      while (buf.length >= 2) {
        const len = buf.readUInt16BE(0);
        if (buf.length < 2 + len) break;
        const msg = buf.subarray(2, 2 + len);
        buf = buf.subarray(2 + len);
        const out = safeAnswer(msg, lookup, this.logger);
        if (out === undefined) {
          sock.destroy();
          return;
        }
        const frame = Buffer.alloc(2 + out.length);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        sock.write(frame);
      }
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const tcp = this.tcp;
    const udp = this.udp;
    this.tcp = undefined;
    this.udp = undefined;
    await Promise.all([
      tcp === undefined ? undefined : new Promise<void>((resolve) => { tcp.close(() => { resolve(); }); }),
      udp === undefined ? undefined : new Promise<void>((resolve) => { udp.close(() => { resolve(); }); }),
    ]);
  }
}

function safeAnswer(msg: Buffer, lookup: (n: string) => string | undefined, logger: Logger): Buffer | undefined {
  try {
    return answerQuery(msg, lookup);
  } catch (e) {
    // answerQuery guards decoding itself; this is the last line so a library bug cannot take bangerd down.
    logger.warn("dns: dropping query that could not be answered", { error: e instanceof Error ? e.message : String(e) });
    return undefined;
  }
}

function checkName(name: string): string {
  const n = normalizeName(name);
  if (!NAME_RE.test(n)) throw new Error(`VM name ${JSON.stringify(name)} cannot be a DNS label`);
  return n;
}

function checkIp(ip: string): string {
  if (!IPV4_RE.test(ip)) throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  return ip;
}
