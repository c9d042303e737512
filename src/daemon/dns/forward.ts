import { createSocket } from "node:dgram";
import { connect } from "node:net";

/** How long one upstream gets to answer before the next one is tried. */
export const FORWARD_TIMEOUT_MS = 2_000;
/** Queries being forwarded at once; more are dropped (the client retries) rather than piling up sockets. */
const MAX_IN_FLIGHT = 256;

export interface Upstream {
  readonly host: string;
  readonly port: number;
}

/**
 * Relays queries banger does not answer itself (names outside `.vm`) to the
 * host's resolvers, as they are: the client's id and flags travel in the
 * query bytes and come back in the upstream's reply. Each UDP query gets its
 * own connected socket on a fresh port, so only a reply from that upstream
 * to that port, with the query's id, is accepted. Upstreams are tried in
 * order, each for `timeoutMs`; undefined when none answered (the client
 * then times out and retries, as with any silent resolver).
 */
export class Forwarder {
  private inFlight = 0;

  constructor(private readonly upstreams: readonly Upstream[], private readonly timeoutMs = FORWARD_TIMEOUT_MS) {}

  get enabled(): boolean {
    return this.upstreams.length > 0;
  }

  udp(query: Buffer): Promise<Buffer | undefined> {
    return this.each((u) => askUdp(u, query, this.timeoutMs));
  }

  tcp(query: Buffer): Promise<Buffer | undefined> {
    return this.each((u) => askTcp(u, query, this.timeoutMs));
  }

  private async each(ask: (u: Upstream) => Promise<Buffer | undefined>): Promise<Buffer | undefined> {
    if (this.inFlight >= MAX_IN_FLIGHT) return undefined;
    this.inFlight++;
    try {
      for (const u of this.upstreams) {
        const reply = await ask(u).catch(() => undefined);
        if (reply !== undefined) return reply;
      }
      return undefined;
    } finally {
      this.inFlight--;
    }
  }
}

/** A reply to `query`: at least a header, the QR bit set and the same id. */
function answers(query: Buffer, reply: Buffer): boolean {
  return reply.length >= 12 && (reply[2] ?? 0) >= 0x80 && reply.readUInt16BE(0) === query.readUInt16BE(0);
}

function askUdp(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = createSocket({ type: "udp4" });
    const done = (r: Buffer | undefined): void => {
      clearTimeout(timer);
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => { done(undefined); }, timeoutMs);
    sock.on("error", () => { done(undefined); });
    sock.on("message", (msg) => {
      if (answers(query, msg)) done(msg);
    });
    sock.connect(u.port, u.host, () => { sock.send(query); });
  });
}

function askTcp(u: Upstream, query: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    const sock = connect({ host: u.host, port: u.port });
    let buf = Buffer.alloc(0);
    let settled = false;
    const done = (r: Buffer | undefined): void => {
      if (settled) return;
      settled = true;
      sock.destroy();
      resolve(r);
    };
    sock.setTimeout(timeoutMs, () => { done(undefined); });
    sock.on("error", () => { done(undefined); });
    sock.on("close", () => { done(undefined); });
    sock.on("connect", () => {
      const frame = Buffer.alloc(2 + query.length);
      frame.writeUInt16BE(query.length, 0);
      query.copy(frame, 2);
      sock.write(frame);
    });
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2) return;
      const len = buf.readUInt16BE(0);
      if (buf.length < 2 + len) return;
      const reply = buf.subarray(2, 2 + len);
      done(answers(query, reply) ? Buffer.from(reply) : undefined);
    });
  });
}
