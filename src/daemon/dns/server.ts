import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { createServer, type Server, type Socket } from "node:net";
import { cidrContains } from "../../model/ipv4.js";
import { DNS_LABEL_RE } from "../../model/dns-label.js";
import type { Logger } from "../../system/log.js";
import type { DnsDeps } from "../vm/deps.js";
import type { EgressGate } from "../egress/service.js";
import { answerQuery, forwardableName, normalizeName, refused, serverFailure } from "./answer.js";
import { Forwarder, type Upstream } from "./forward.js";

/** A TCP client gets this long between messages before the connection is closed. */
const TCP_IDLE_MS = 10_000;
/** DNS over TCP frames are at most 64 KiB; anything buffered beyond that is an attack or a bug. */
const TCP_MAX_BUFFER = 65_537;

const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])){3}$/;

export interface DnsServerOptions {
  /** Where names outside `.vm` are relayed (the host's resolvers); none: they are refused. */
  readonly upstreams?: readonly Upstream[];
  /** How long each upstream gets (forward.ts FORWARD_TIMEOUT_MS by default). */
  readonly forwardTimeoutMs?: number;
  /** The bridge network: its guests, and loopback, are the only clients answered. */
  readonly guestCidr?: string;
  /** Guests under an egress policy: which names are relayed for them, and what their answers allow. */
  readonly egress?: EgressGate;
}

/** Loopback and the bridge network only: nobody else may use banger's server, least of all as a relay. */
export function answersClient(address: string, guestCidr: string | undefined): boolean {
  const v4 = address.replace(/^::ffff:/, "");
  if (!IPV4_RE.test(v4)) return false;
  return v4.startsWith("127.") || (guestCidr !== undefined && cidrContains(guestCidr, v4));
}

interface Listener {
  readonly udp: UdpSocket;
  readonly tcp: Server;
}

/**
 * banger's DNS server, inside bangerd: UDP and TCP on network.dns_listen and,
 * once the bridge exists, on the bridge address at the same port (the root
 * helper redirects guests' port 53 there). It answers `.vm` names from the
 * records the lifecycle keeps in sync with running VMs (setRecords / publish /
 * unpublish) and relays every other name to the upstreams. Only loopback and
 * the bridge network are answered, so it is no open resolver (and no
 * amplifier) for anyone else who can reach the bridge address. Malformed
 * packets are dropped; no input can throw out of a socket handler.
 */
export class DnsServer implements DnsDeps {
  private records = new Map<string, string>();
  private readonly listeners: Listener[] = [];
  private readonly conns = new Set<Socket>();
  private bound = "";
  private guestAddress: string | undefined;
  private readonly forwarder: Forwarder;

  constructor(private readonly logger: Logger, private readonly opts: DnsServerOptions = {}) {
    this.forwarder = new Forwarder(opts.upstreams ?? [], opts.forwardTimeoutMs);
  }

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

  /** Every record, for the host's hosts file. */
  entries(): { name: string; ip: string }[] {
    return [...this.records].map(([name, ip]) => ({ name, ip }));
  }

  /** "IP:PORT" actually bound (port 0 in the listen address picks a free one, used by tests). */
  address(): string {
    return this.bound;
  }

  /** "IP:PORT" bound on the bridge for guests, or undefined until the bridge address exists. */
  guestListenAddress(): string | undefined {
    return this.guestAddress;
  }

  async start(listen: string): Promise<string> {
    const idx = listen.lastIndexOf(":");
    const host = listen.slice(0, idx);
    const port = Number(listen.slice(idx + 1));
    if (idx <= 0 || !IPV4_RE.test(host) || !Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`dns listen address ${JSON.stringify(listen)} is not IPv4:PORT`);
    const bound = await this.listen(host, port);
    this.bound = `${host}:${bound}`;
    return this.bound;
  }

  /**
   * Also listen on `ip` (the bridge address) at the main port, for guests. The address exists only
   * once the helper has made the bridge, so this is retried on each publish until it binds; false
   * while the address is not there yet.
   */
  async listenForGuests(ip: string): Promise<boolean> {
    if (this.guestAddress !== undefined) return true;
    const port = Number(this.bound.slice(this.bound.lastIndexOf(":") + 1));
    if (this.bound === "" || this.bound.startsWith(`${ip}:`)) return false;
    try {
      await this.listen(ip, port);
    } catch (e) {
      if ((e as { cause?: NodeJS.ErrnoException }).cause?.code === "EADDRNOTAVAIL") return false;
      throw e;
    }
    this.guestAddress = `${ip}:${port}`;
    this.logger.info("dns listening for guests", { address: this.guestAddress });
    return true;
  }

  private async listen(host: string, port: number): Promise<number> {
    const tcp = createServer((sock) => { this.serveTcp(sock); });
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", (e) => { reject(new Error(`cannot listen for DNS on tcp ${host}:${port}: ${e.message}; change network.dns_listen`, { cause: e })); });
      tcp.listen({ host, port, exclusive: true }, () => { tcp.removeAllListeners("error"); resolve(); });
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
      if (!this.allowed(rinfo.address)) return;
      void this.reply(msg, "udp", rinfo.address).then((out) => {
        if (out !== undefined) udp.send(out, rinfo.port, rinfo.address);
      });
    });
    udp.on("error", (e) => { this.logger.warn("dns udp socket error", { error: e.message }); });
    tcp.on("error", (e) => { this.logger.warn("dns tcp socket error", { error: e.message }); });
    this.listeners.push({ udp, tcp });
    return tcpPort;
  }

  private allowed(address: string): boolean {
    return answersClient(address, this.opts.guestCidr);
  }

  private async reply(msg: Buffer, transport: "udp" | "tcp", client: string): Promise<Buffer | undefined> {
    try {
      const name = forwardableName(msg);
      const gate = name === undefined ? undefined : this.opts.egress?.(client.replace(/^::ffff:/, ""));
      if (name !== undefined && gate !== undefined && !gate.allows(name)) return refused(msg);
      if (this.forwarder.enabled && name !== undefined) {
        const out = await (transport === "udp" ? this.forwarder.udp(msg) : this.forwarder.tcp(msg));
        if (out === undefined) return serverFailure(msg);
        if (gate !== undefined) {
          // The answer goes out only once its addresses are in the guest's allow set: the guest's
          // first connect to them must not race the rule.
          try {
            await gate.learn(out);
          } catch (e) {
            this.logger.warn("dns: allowing an answer's addresses to the guest failed; answering SERVFAIL", { client, name, error: e instanceof Error ? e.message : String(e) });
            return serverFailure(msg);
          }
        }
        return out;
      }
      return answerQuery(msg, (n) => this.records.get(n));
    } catch (e) {
      // Both guard their input; this is the last line so a library bug cannot take bangerd down.
      this.logger.warn("dns: dropping query that could not be answered", { error: e instanceof Error ? e.message : String(e) });
      return undefined;
    }
  }

  private serveTcp(sock: Socket): void {
    if (!this.allowed(sock.remoteAddress ?? "")) {
      sock.destroy();
      return;
    }
    this.conns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on("close", () => this.conns.delete(sock));
    sock.on("error", () => sock.destroy());
    let buf = Buffer.alloc(0);
    // Replies go out in query order even when a forwarded one takes longer than a local one after it.
    let sending = Promise.resolve();
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
        const msg = Buffer.from(buf.subarray(2, 2 + len));
        buf = buf.subarray(2 + len);
        const answered = this.reply(msg, "tcp", sock.remoteAddress ?? "");
        sending = sending.then(async () => {
          const out = await answered;
          if (out === undefined) {
            sock.destroy();
            return;
          }
          const frame = Buffer.alloc(2 + out.length);
          frame.writeUInt16BE(out.length, 0);
          out.copy(frame, 2);
          if (!sock.destroyed) sock.write(frame);
        });
      }
    });
  }

  async close(): Promise<void> {
    for (const c of this.conns) c.destroy();
    const all = this.listeners.splice(0);
    this.guestAddress = undefined;
    await Promise.all(all.flatMap(({ udp, tcp }) => [
      new Promise<void>((resolve) => { tcp.close(() => { resolve(); }); }),
      new Promise<void>((resolve) => { udp.close(() => { resolve(); }); }),
    ]));
  }
}

function checkName(name: string): string {
  const n = normalizeName(name);
  if (!DNS_LABEL_RE.test(n)) throw new Error(`VM name ${JSON.stringify(name)} cannot be a DNS label`);
  return n;
}

function checkIp(ip: string): string {
  if (!IPV4_RE.test(ip)) throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  return ip;
}
