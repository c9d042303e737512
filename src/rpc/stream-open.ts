import type { Duplex } from "node:stream";
import { RpcError } from "./errors.js";
import { newOpId } from "./opid.js";
import { PROTOCOL_VERSION } from "./protocol.js";
import { unwrapResponse, type Dial } from "./unix-client.js";

/** A streaming method's connection after its ok line: frames flow on `conn`; `head` is what arrived after the line. */
export interface OpenedStream {
  readonly conn: Duplex;
  readonly head: Buffer;
  readonly result: unknown;
  readonly opId: string;
}

const MAX_LINE_BYTES = 1024 * 1024;
const OPEN_TIMEOUT_MS = 60_000;

/**
 * Sends a streaming method's request line and waits for the answer line. An
 * error answer throws RpcError (and the connection is closed); an ok one
 * leaves the connection open for frames. Like callOver, no zod here.
 */
export function openStream(dial: Dial, method: string, params: unknown, opId: string = newOpId(), signal?: AbortSignal): Promise<OpenedStream> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(new RpcError("unavailable", `${method} aborted before it started`, opId));
      return;
    }
    const conn = dial.open();
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const cleanup = (): void => {
      settled = true;
      clearTimeout(timer);
      conn.off("data", onData);
      conn.off("end", onEnd);
      conn.off("error", onError);
      signal?.removeEventListener("abort", onAbort);
    };
    const fail = (e: RpcError): void => {
      if (settled) return;
      cleanup();
      conn.destroy();
      reject(e);
    };
    const onAbort = (): void => { fail(new RpcError("unavailable", `${method} aborted`, opId)); };
    const onEnd = (): void => { fail(new RpcError("unavailable", `${dial.label} closed the connection without answering`, opId)); };
    const onError = (err: Error): void => { fail(new RpcError("unavailable", `cannot reach ${dial.label}: ${err.message}`, opId)); };
    const onData = (chunk: Buffer): void => {
      const nl = chunk.indexOf(0x0a);
      if (nl === -1) {
        size += chunk.length;
        if (size > MAX_LINE_BYTES) fail(new RpcError("internal", `response from ${dial.label} too large`, opId));
        else chunks.push(chunk);
        return;
      }
      chunks.push(chunk.subarray(0, nl));
      const head = Buffer.from(chunk.subarray(nl + 1));
      let result: unknown;
      try {
        result = unwrapResponse(JSON.parse(Buffer.concat(chunks).toString("utf8")), dial.label, opId);
      } catch (e) {
        fail(e instanceof RpcError ? e : new RpcError("internal", `unparseable response from ${dial.label}`, opId));
        return;
      }
      cleanup();
      // The caller takes over reading; nothing may flow until it attaches its own listener.
      conn.pause();
      resolve({ conn, head, result, opId });
    };
    const timer = setTimeout(() => { fail(new RpcError("timeout", `no answer from ${dial.label} within ${OPEN_TIMEOUT_MS} ms`, opId)); }, OPEN_TIMEOUT_MS);
    signal?.addEventListener("abort", onAbort, { once: true });
    conn.on("data", onData);
    conn.on("end", onEnd);
    conn.on("error", onError);
    conn.write(JSON.stringify({ version: PROTOCOL_VERSION, method, params, op_id: opId }) + "\n");
  });
}
