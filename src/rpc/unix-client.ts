import { connect } from "node:net";
import type { MethodDescriptor, ParamsOf, ResultOf } from "./descriptor.js";
import { formatZodError } from "./dispatcher.js";
import { PROTOCOL_VERSION, responseSchema } from "./envelope.js";
import { RpcError } from "./errors.js";
import { newOpId } from "./opid.js";

export interface CallOptions {
  readonly opId?: string;
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/**
 * Calls one method over a unix socket and returns its schema-checked result.
 * Failures throw RpcError carrying the op id, so callers can always print it.
 */
export async function callUnix<D extends MethodDescriptor>(socketPath: string, descriptor: D, params: ParamsOf<D>, options: CallOptions = {}): Promise<ResultOf<D>> {
  const opId = options.opId ?? newOpId();
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const line = JSON.stringify({ version: PROTOCOL_VERSION, method: descriptor.name, params, op_id: opId }) + "\n";
  const raw = await exchange(socketPath, line, timeoutMs, opId);
  let parsedJson: unknown;
  try {
    parsedJson = JSON.parse(raw);
  } catch {
    throw new RpcError("internal", `unparseable response from ${socketPath}`, opId);
  }
  const resp = responseSchema.safeParse(parsedJson);
  if (!resp.success) throw new RpcError("internal", `malformed response from ${socketPath}: ${formatZodError(resp.error)}`, opId);
  if (!resp.data.ok) {
    const e = resp.data.error;
    throw new RpcError(e.code, e.message, e.op_id ?? opId);
  }
  const result = descriptor.result.safeParse(resp.data.result);
  if (!result.success) throw new RpcError("internal", `result of ${descriptor.name} failed its schema: ${formatZodError(result.error)}`, opId);
  return result.data as ResultOf<D>;
}

function exchange(socketPath: string, line: string, timeoutMs: number, opId: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
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
    socket.on("connect", () => socket.write(line));
    socket.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_RESPONSE_BYTES) {
        settle(() => { reject(new RpcError("internal", `response from ${socketPath} too large`, opId)); });
        return;
      }
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString("utf8");
      const nl = text.indexOf("\n");
      if (nl !== -1) settle(() => { resolve(text.slice(0, nl)); });
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
