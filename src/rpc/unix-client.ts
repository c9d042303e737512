import { connect } from "node:net";
import type { Duplex } from "node:stream";
import type { MethodDescriptor, ParamsOf, ResultOf } from "./descriptor.js";
import { ERROR_CODES, RpcError, type ErrorCode } from "./errors.js";
import { newOpId } from "./opid.js";
import { PROTOCOL_VERSION } from "./protocol.js";

export interface CallOptions {
  readonly opId?: string;
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
const NEWLINE = 0x0a;

/**
 * Opens one connection to a daemon: a unix socket here, or a stream carried over SSH to another
 * host (a context). `label` names the far end in error messages. Each call gets its own connection.
 */
export interface Dial {
  readonly label: string;
  open(): Duplex;
}

/** The local daemon's (or helper's) socket. */
export function unixDial(socketPath: string): Dial {
  return { label: socketPath, open: () => connect(socketPath) };
}

/**
 * Calls one method over a unix socket and returns its result, unchecked.
 * The server validates every result against the method's schema before
 * sending it and the envelope carries the protocol version, so the client
 * only checks the envelope, by hand: this module must not load zod, whose
 * import and schema construction were most of the CLI's start-up time.
 * Typed callers: `callMethod` (by descriptor) or the CLI's `ctx.call` (by name).
 * Failures throw RpcError carrying the op id, so callers can always print it.
 */
export async function callUnix(socketPath: string, method: string, params: unknown, options: CallOptions = {}): Promise<unknown> {
  return callOver(unixDial(socketPath), method, params, options);
}

/** `callUnix` over any connection a `Dial` opens. */
export async function callOver(dial: Dial, method: string, params: unknown, options: CallOptions = {}): Promise<unknown> {
  const socketPath = dial.label;
  const opId = options.opId ?? newOpId();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const line = JSON.stringify({ version: PROTOCOL_VERSION, method, params, op_id: opId }) + "\n";
  const raw = await exchange(dial, line, timeoutMs, opId);
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new RpcError("internal", `unparseable response from ${socketPath}`, opId);
  }
  return unwrapResponse(parsed, socketPath, opId);
}

/** `callUnix` typed by a method descriptor; only the descriptor's name is used at runtime. */
export async function callMethod<D extends MethodDescriptor>(socketPath: string, descriptor: D, params: ParamsOf<D>, options: CallOptions = {}): Promise<ResultOf<D>> {
  // ResultOf<D> is not narrowed for a generic D, so the unknown result needs no cast; callers see their D's type.
  return callUnix(socketPath, descriptor.name, params, options);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isErrorCode(v: unknown): v is ErrorCode {
  return typeof v === "string" && (ERROR_CODES as readonly string[]).includes(v);
}

/**
 * The envelope check the zod `responseSchema` used to do: `{ok: true, result}`
 * or `{ok: false, error: {code, message, op_id?}}`. A code this client does
 * not know (a newer server) becomes `internal` rather than a malformed reply,
 * so the server's message still reaches the user.
 */
export function unwrapResponse(parsed: unknown, socketPath: string, opId: string): unknown {
  const malformed = (why: string): RpcError => new RpcError("internal", `malformed response from ${socketPath}: ${why}`, opId);
  if (!isRecord(parsed)) throw malformed("not a JSON object");
  // A missing result is `undefined`, as before: JSON drops an undefined field, and the server already checked it.
  if (parsed["ok"] === true) return parsed["result"];
  if (parsed["ok"] !== false) throw malformed("ok is not a boolean");
  const error = parsed["error"];
  if (!isRecord(error)) throw malformed("error response without an error object");
  const message = error["message"];
  if (typeof message !== "string") throw malformed("error.message is not a string");
  const code = error["code"];
  if (typeof code !== "string") throw malformed("error.code is not a string");
  const errOpId = error["op_id"];
  if (errOpId !== undefined && typeof errOpId !== "string") throw malformed("error.op_id is not a string");
  if (isErrorCode(code)) throw new RpcError(code, message, errOpId ?? opId);
  throw new RpcError("internal", `${message} (unknown error code ${JSON.stringify(code)} from ${socketPath})`, errOpId ?? opId);
}

function exchange(dial: Dial, line: string, timeoutMs: number, opId: string): Promise<string> {
  const socketPath = dial.label;
  return new Promise((resolve, reject) => {
    const socket = dial.open();
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    const timer = setTimeout(() => {
      settle(() => { reject(new RpcError("timeout", `no answer from ${socketPath} within ${timeoutMs} ms`, opId)); });
    }, timeoutMs);
    // A net.Socket queues writes until it connects; other transports (an ssh child's pipes) are open at once.
    socket.write(line);
    socket.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        settle(() => { reject(new RpcError("internal", `response from ${socketPath} too large`, opId)); });
        return;
      }
      // Only the new chunk is scanned: earlier ones had no newline, so a
      // large response costs one pass instead of re-joining every chunk.
      const nl = chunk.indexOf(NEWLINE);
      if (nl === -1) {
        chunks.push(chunk);
        return;
      }
      chunks.push(chunk.subarray(0, nl));
      settle(() => { resolve(Buffer.concat(chunks).toString("utf8")); });
    });
    socket.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8").trim();
      settle(() => {
        if (text !== "") resolve(text);
        else reject(new RpcError("unavailable", `${socketPath} closed the connection without answering`, opId));
      });
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      settle(() => { reject(new RpcError("unavailable", describeConnectError(socketPath, err), opId)); });
    });
  });
}

function describeConnectError(socketPath: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case "ENOENT":
    case "ECONNREFUSED":
      return `nothing is listening on ${socketPath}; is it running? (${err.code})`;
    case "EACCES":
      return `permission denied on ${socketPath}; it belongs to another user`;
    default:
      return `cannot reach ${socketPath}: ${err.message}`;
  }
}
