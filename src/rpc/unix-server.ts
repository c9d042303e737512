import { chmodSync, chownSync, lstatSync, unlinkSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import type { Logger } from "../system/log.js";
import { peerCredOf, type PeerCred } from "../system/peercred.js";
import type { Dispatcher } from "./dispatcher.js";
import type { Response } from "./envelope.js";
import { newOpId } from "./opid.js";

export const DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024;
const IDLE_TIMEOUT_MS = 30_000;

export interface UnixServerOptions {
  readonly socketPath: string;
  readonly dispatcher: Dispatcher<PeerCred>;
  readonly logger: Logger;
  /** Peer uids allowed besides root. */
  readonly allowedUids: readonly number[];
  /** chown the socket to this uid/gid after creating it (root helper → owner). */
  readonly socketOwner?: { uid: number; gid: number };
  readonly maxRequestBytes?: number;
}

/**
 * Serves a Dispatcher on a unix socket: one newline-terminated request per
 * connection, size-capped, peer uid checked with SO_PEERCRED on every
 * connection. The socket is created 0600 (callers run under umask 077).
 * A streaming method's ok answer keeps the connection open and hands it to
 * the method (frames follow, src/rpc/frames.ts); it then has no idle timeout.
 */
export async function serveUnix(options: UnixServerOptions): Promise<Server> {
  const max = options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  removeStaleSocket(options.socketPath);
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    handleConnection(socket, options, max);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.socketPath, () => {
      server.off("error", reject);
      resolve();
    });
  });
  chmodSync(options.socketPath, 0o600);
  if (options.socketOwner !== undefined) chownSync(options.socketPath, options.socketOwner.uid, options.socketOwner.gid);
  return server;
}

/** A socket file left by a crashed server blocks listen(); anything that is not a socket is left alone. */
function removeStaleSocket(path: string): void {
  try {
    const st = lstatSync(path);
    if (!st.isSocket()) throw new Error(`${path} exists and is not a socket; refusing to replace it`);
    unlinkSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
}

function handleConnection(socket: Socket, options: UnixServerOptions, max: number): void {
  const started = Date.now();
  socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
  socket.on("error", () => undefined);

  const reply = (response: Response): void => {
    if (socket.destroyed) return;
    // One request per connection. Keep draining (and discarding) what the peer still sends so it is not
    // hit by EPIPE before it reads the answer; close once it hangs up, or after a grace period.
    socket.end(JSON.stringify(response) + "\n");
    socket.resume();
    const grace = setTimeout(() => socket.destroy(), 2_000);
    grace.unref();
    socket.once("close", () => { clearTimeout(grace); });
  };

  let peer: PeerCred;
  try {
    peer = peerCredOf(socket);
  } catch (e) {
    const opId = newOpId();
    options.logger.error("peer credentials unavailable", { op_id: opId, error: e });
    reply({ ok: false, error: { code: "unauthorized", message: "could not read peer credentials", op_id: opId } });
    return;
  }
  if (peer.uid !== 0 && !options.allowedUids.includes(peer.uid)) {
    const opId = newOpId();
    options.logger.warn("rpc refused", { op_id: opId, peer_uid: peer.uid, peer_pid: peer.pid, code: "unauthorized" });
    reply({ ok: false, error: { code: "unauthorized", message: `uid ${peer.uid} may not use this socket`, op_id: opId } });
    return;
  }

  const chunks: Buffer[] = [];
  let size = 0;
  let done = false;
  let head = Buffer.alloc(0);
  const finish = (line: string): void => {
    done = true;
    socket.pause();
    void options.dispatcher
      .dispatch(line, peer, (err, opId) => {
        options.logger.error("handler crashed", { op_id: opId, error: err, stack: err instanceof Error ? err.stack : undefined });
      })
      .then((outcome) => {
        const fields = { op_id: outcome.opId, method: outcome.method, peer_uid: peer.uid, duration_ms: Date.now() - started };
        if (outcome.response.ok) options.logger.info("rpc ok", fields);
        else options.logger.warn("rpc failed", { ...fields, code: outcome.response.error.code, error: outcome.response.error.message });
        // Handed over even when the peer has gone, so the method can release what it opened.
        if (outcome.takeOver !== undefined && outcome.response.ok) {
          socket.setTimeout(0);
          socket.removeListener("data", onData);
          socket.write(JSON.stringify(outcome.response) + "\n");
          outcome.takeOver(socket, head);
          return;
        }
        reply(outcome.response);
      });
  };
  const onData = (chunk: Buffer): void => {
    if (done) return;
    const nl = chunk.indexOf(0x0a);
    const take = nl === -1 ? chunk : chunk.subarray(0, nl);
    size += take.length;
    if (size > max) {
      // Stop reading at once: an oversized request is refused without buffering the rest of it.
      done = true;
      const opId = newOpId();
      options.logger.warn("rpc failed", { op_id: opId, code: "bad_request", peer_uid: peer.uid, error: "request too large" });
      reply({ ok: false, error: { code: "bad_request", message: `request exceeds ${max} bytes`, op_id: opId } });
      return;
    }
    chunks.push(take);
    if (nl !== -1) {
      head = Buffer.from(chunk.subarray(nl + 1));
      finish(Buffer.concat(chunks).toString("utf8"));
    }
  };
  socket.on("data", onData);
  socket.on("end", () => {
    if (!done) {
      if (size === 0) {
        done = true;
        socket.end();
        return;
      }
      // A request without its trailing newline is still one request.
      finish(Buffer.concat(chunks).toString("utf8"));
    }
  });
}
