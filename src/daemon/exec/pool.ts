import ssh2, { type Client, type ClientChannel } from "ssh2";
import { RpcError } from "../../rpc/errors.js";
import type { ExitStatus } from "../../rpc/frames.js";
import type { Logger } from "../../system/log.js";

/** The VM an exec goes to, as the daemon's record has it now. */
export interface ExecTarget {
  readonly id: string;
  readonly name: string;
  readonly ip: string;
  /** The pinned `ssh-ed25519 BASE64` line. */
  readonly hostKeyPub: string;
  /**
   * Changes whenever the guest is a new boot (start time, IP, key): a connection of an older
   * generation belongs to a guest that is gone and is closed rather than reused.
   */
  readonly generation: string;
}

export interface ExecPoolOptions {
  readonly logger: Logger;
  /** The install's client key (OpenSSH format), read once. */
  readonly privateKey: () => Promise<Buffer>;
  readonly user?: string;
  readonly port?: number;
  /**
   * Channels in flight on one connection. 1 by default: dropbear 2022.83 (the tiny image's, and
   * Debian 12's) aborts the whole connection ("Failed assertion (common-channel.c:705):
   * !channel->sent_close") when two exec channels overlap on it; measured on loopback, 100 execs
   * 2 at a time lost most of them, 1 at a time lost none. Idle connections are reused.
   */
  readonly channelsPerConnection?: number;
  /** Connections per VM; past this, requests wait in order (a signal's kill does not wait). */
  readonly maxConnections?: number;
  /** Handshakes in progress per VM: dropbear refuses more than a few unauthenticated clients per IP. */
  readonly maxConnecting?: number;
  /** An idle connection beyond the first is closed after this long. */
  readonly idleMs?: number;
  readonly connectTimeoutMs?: number;
}

export interface ChannelRequest {
  readonly command: string;
  readonly pty?: { readonly cols: number; readonly rows: number };
}

/** A session channel as open() hands it over. */
export interface OpenChannel {
  readonly channel: ClientChannel;
  /** Must be called once the channel closes (it is also called on close). */
  readonly release: () => void;
  /** The command's exit status once the guest sent it (see recordExit). */
  readonly exitStatus: () => ExitStatus | undefined;
}

/**
 * Records a channel's exit status from now on. ssh2 emits "exit" once, as the request arrives,
 * while the output stays buffered until read: a command that ends at once (`head -n 1 FILE`) can
 * send its exit before the caller has wired the channel to a client, and a listener attached then
 * never hears it. So the status is caught the moment the channel exists.
 */
export function recordExit(channel: NodeJS.EventEmitter): () => ExitStatus | undefined {
  let status: ExitStatus | undefined;
  channel.once("exit", (code: number | null, signal?: string) => {
    status = { code: typeof code === "number" ? code : null, signal: typeof signal === "string" ? signal.replace(/^SIG/, "") : null };
  });
  return () => status;
}

interface Conn {
  readonly client: Client;
  /** Settles when authenticated; rejects with the RpcError open() reports. */
  ready: Promise<void>;
  active: number;
  dead: boolean;
  authenticated: boolean;
  idle: NodeJS.Timeout | undefined;
}

interface VmConns {
  generation: string;
  readonly conns: Conn[];
  readonly waiters: (() => void)[];
}

/**
 * One authenticated SSH connection (a few under load) per running VM, shared by
 * every exec and file stream to it. The host key is checked against the pin
 * on every connect (hostVerifier), so a guest that is not the one banger
 * created is refused. Connections open on first use, are dropped when they
 * fail or the VM is a new boot, and are closed by forget() at stop/delete.
 */
export class ExecPool {
  private readonly vms = new Map<string, VmConns>();
  private readonly perConn: number;
  private readonly maxConns: number;
  private readonly maxConnecting: number;
  private readonly idleMs: number;
  private key: Promise<Buffer> | undefined;

  constructor(private readonly opts: ExecPoolOptions) {
    this.perConn = opts.channelsPerConnection ?? 1;
    this.maxConns = opts.maxConnections ?? 32;
    this.maxConnecting = opts.maxConnecting ?? 4;
    this.idleMs = opts.idleMs ?? 30_000;
  }

  /** Opens a session channel running `req.command`; the returned release() must be called once it closes. */
  async open(target: ExecTarget, req: ChannelRequest, opId: string, urgent = false): Promise<OpenChannel> {
    const conn = await this.slot(target, opId, urgent);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      conn.active--;
      if (conn.active === 0) this.idleLater(target.id, conn);
      this.wake(target.id);
    };
    try {
      await conn.ready;
      const { channel, exitStatus } = await new Promise<{ channel: ClientChannel; exitStatus: () => ExitStatus | undefined }>((resolve, reject) => {
        const opts = req.pty === undefined ? {} : { pty: { cols: req.pty.cols, rows: req.pty.rows, term: "xterm-256color" } };
        conn.client.exec(req.command, opts, (err, ch) => {
          if (err !== undefined) reject(err);
          // In this callback, before any await: ssh2 may deliver the exit right after it.
          else resolve({ channel: ch, exitStatus: recordExit(ch) });
        });
      });
      channel.once("close", release);
      return { channel, release, exitStatus };
    } catch (e) {
      release();
      if (e instanceof RpcError) throw e;
      throw new RpcError("operation_failed", `cannot open an exec channel to ${target.name}: ${e instanceof Error ? e.message : String(e)}`, opId);
    }
  }

  /** Closes every connection to the VM (it stopped, restarted or was deleted). Idempotent. */
  forget(vmId: string, opId: string): void {
    const entry = this.vms.get(vmId);
    if (entry === undefined) return;
    this.vms.delete(vmId);
    for (const c of entry.conns) this.close(c);
    for (const w of entry.waiters.splice(0)) w();
    this.opts.logger.info("exec connections closed", { op_id: opId, vm_id: vmId, connections: entry.conns.length });
  }

  closeAll(opId: string): void {
    for (const id of [...this.vms.keys()]) this.forget(id, opId);
  }

  /** Connections open now, for tests and `system status`. */
  connectionCount(vmId: string): number {
    return this.vms.get(vmId)?.conns.filter((c) => !c.dead).length ?? 0;
  }

  private close(c: Conn): void {
    c.dead = true;
    clearTimeout(c.idle);
    c.client.end();
  }

  /** Keeps one connection per VM warm; others that stay idle are closed. */
  private idleLater(vmId: string, c: Conn): void {
    clearTimeout(c.idle);
    c.idle = setTimeout(() => {
      const entry = this.vms.get(vmId);
      if (c.active !== 0 || c.dead || entry === undefined || entry.conns.filter((o) => !o.dead).length <= 1) return;
      this.close(c);
      entry.conns.splice(entry.conns.indexOf(c), 1);
    }, this.idleMs);
    c.idle.unref();
  }

  private wake(vmId: string): void {
    this.vms.get(vmId)?.waiters.shift()?.();
  }

  private async slot(target: ExecTarget, opId: string, urgent: boolean): Promise<Conn> {
    for (;;) {
      let entry = this.vms.get(target.id);
      if (entry !== undefined && entry.generation !== target.generation) {
        this.forget(target.id, opId);
        entry = undefined;
      }
      if (entry === undefined) {
        entry = { generation: target.generation, conns: [], waiters: [] };
        this.vms.set(target.id, entry);
      }
      let best: Conn | undefined;
      for (const c of entry.conns) if (!c.dead && c.active < this.perConn && (best === undefined || c.active < best.active)) best = c;
      // Reuse open connections first; a new one costs a key exchange on a slow guest.
      const connecting = entry.conns.filter((c) => !c.dead && !c.authenticated).length;
      if (best === undefined && (urgent || (entry.conns.length < this.maxConns && connecting < this.maxConnecting))) best = this.connect(target, entry, opId);
      if (best !== undefined) {
        clearTimeout(best.idle);
        best.active++;
        return best;
      }
      await new Promise<void>((resolve) => { entry.waiters.push(resolve); });
    }
  }

  private connect(target: ExecTarget, entry: VmConns, opId: string): Conn {
    // ssh2 is CommonJS: its default export works both bundled and as plain ESM under node --test.
    const client = new ssh2.Client();
    const pinned = pinnedBlob(target.hostKeyPub);
    let presented: Buffer | undefined;
    const started = Date.now();
    const handshake = (async () => {
      const privateKey = await (this.key ??= this.opts.privateKey());
      await new Promise<void>((resolve, reject) => {
        client.once("ready", resolve);
        client.once("error", reject);
        client.connect({
          host: target.ip,
          port: this.opts.port ?? 22,
          username: this.opts.user ?? "root",
          privateKey,
          readyTimeout: this.opts.connectTimeoutMs ?? 20_000,
          keepaliveInterval: 15_000,
          keepaliveCountMax: 3,
          algorithms: { serverHostKey: ["ssh-ed25519"] },
          hostVerifier: (key: Buffer) => {
            presented = key;
            return key.equals(pinned);
          },
        });
        // ssh2 leaves Nagle on. An exec's requests are small packets written back to back, and each
        // one after the first waited for the guest's delayed ACK (40 ms): measured on a tiny guest
        // under TCG, `true` took 114 ms over a connection with Nagle and 35 ms without.
        client.setNoDelay(true);
      });
    })();
    const conn: Conn = { client, ready: Promise.resolve(), active: 0, dead: false, authenticated: false, idle: undefined };
    const drop = (): void => {
      // Not closed by banger (close() marks it dead first): with channels in flight, this is why they report no exit.
      if (!conn.dead && conn.active > 0) this.opts.logger.warn("exec connection closed with channels in flight", { op_id: opId, vm: target.name, channels: conn.active });
      conn.dead = true;
      clearTimeout(conn.idle);
      const i = entry.conns.indexOf(conn);
      if (i !== -1) entry.conns.splice(i, 1);
      // Whoever waited for a slot may now open a connection in its place.
      for (const w of entry.waiters.splice(0)) w();
    };
    client.on("close", drop);
    client.on("error", (e: Error) => {
      this.opts.logger.warn("exec connection failed", { op_id: opId, vm: target.name, error: e.message });
      drop();
    });
    entry.conns.push(conn);
    // The handshake's own rejection is reported by open(); this keeps it from being unhandled meanwhile.
    conn.ready = handshake.then(
      () => {
        conn.authenticated = true;
        // A handshake slot is free: a waiter may start the next connection.
        this.wake(target.id);
        this.opts.logger.info("exec connection ready", { op_id: opId, vm: target.name, connections: entry.conns.length, duration_ms: Date.now() - started });
      },
      (e: unknown) => {
        drop();
        client.end();
        if (presented !== undefined && !presented.equals(pinned)) {
          throw new RpcError("operation_failed", `${target.name} (${target.ip}) presented a host key other than the one banger pinned; refusing to trust it (was the VM's disk replaced?)`, opId);
        }
        throw new RpcError("operation_failed", `cannot connect to ${target.name} (${target.ip}) over SSH: ${e instanceof Error ? e.message : String(e)}`, opId);
      },
    );
    conn.ready.catch(() => undefined);
    return conn;
  }
}

function pinnedBlob(line: string): Buffer {
  const [type, body] = line.trim().split(/[ \t]+/);
  if (type !== "ssh-ed25519" || body === undefined || !/^[A-Za-z0-9+/]+=*$/.test(body)) throw new RpcError("operation_failed", "the VM has no pinned ssh-ed25519 host key; restart it so banger pins one");
  return Buffer.from(body, "base64");
}
