import type { Duplex } from "node:stream";
import type { z } from "zod";
import type { MethodDescriptor, ParsedParamsOf, ResultOf } from "./descriptor.js";
import { PROTOCOL_VERSION, requestSchema, type Response } from "./envelope.js";
import { RpcError } from "./errors.js";
import { newOpId } from "./opid.js";

/** What a handler learns about the call besides its params. */
export interface CallContext<Peer = unknown> {
  readonly opId: string;
  readonly method: string;
  readonly peer: Peer;
  /**
   * For a streaming method: once the ok line is written, the transport hands its connection
   * (and any bytes that came after the request line) to `takeOver` instead of closing it.
   */
  upgrade(takeOver: StreamTakeOver): void;
}

export type StreamTakeOver = (conn: Duplex, head: Buffer) => void;

export type Handler<D extends MethodDescriptor, Peer> = (params: ParsedParamsOf<D>, ctx: CallContext<Peer>) => Promise<ResultOf<D>> | ResultOf<D>;

export interface Registration<Peer> {
  readonly descriptor: MethodDescriptor;
  readonly handler: Handler<MethodDescriptor, Peer>;
}

/** Pair a descriptor with its handler, keeping the handler typed by the descriptor. */
export function implement<D extends MethodDescriptor, Peer>(descriptor: D, handler: Handler<D, Peer>): Registration<Peer> {
  return { descriptor, handler: handler as unknown as Handler<MethodDescriptor, Peer> };
}

export interface DispatchOutcome {
  readonly response: Response;
  readonly opId: string;
  /** The method name when the request parsed far enough to have one. */
  readonly method: string | undefined;
  /** Set when an ok response upgrades the connection (CallContext.upgrade). */
  readonly takeOver?: StreamTakeOver;
}

/**
 * The protocol core: one request line in, one response out. No sockets or
 * processes here; transports call it. It never throws: garbage gets
 * `bad_request`, handler exceptions other than RpcError become `internal`.
 */
export interface DispatcherOptions {
  /**
   * Check every result against its schema before answering (default). Handlers are typed
   * against the same schemas, so this catches only bugs the compiler cannot see; a server on a
   * hot path (bangerd: `vm list` spent a third of its time here) may turn it off, and its tests
   * keep it on.
   */
  readonly checkResults?: boolean;
}

export class Dispatcher<Peer = unknown> {
  private readonly table = new Map<string, Registration<Peer>>();
  private readonly checkResults: boolean;

  constructor(registrations: readonly Registration<Peer>[], options: DispatcherOptions = {}) {
    this.checkResults = options.checkResults ?? true;
    for (const r of registrations) {
      if (this.table.has(r.descriptor.name)) throw new Error(`method ${r.descriptor.name} registered twice`);
      this.table.set(r.descriptor.name, r);
    }
  }

  methods(): string[] {
    return [...this.table.keys()].sort();
  }

  async dispatch(line: string, peer: Peer, onInternal?: (err: unknown, opId: string) => void): Promise<DispatchOutcome> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return fail("bad_request", "request is not valid JSON", newOpId(), undefined);
    }
    const rawOpId = pickOpId(raw);
    const parsed = requestSchema.safeParse(raw);
    if (!parsed.success) {
      return fail("bad_request", `malformed request: ${formatZodError(parsed.error)}`, rawOpId ?? newOpId(), pickMethod(raw));
    }
    const req = parsed.data;
    const opId = req.op_id ?? newOpId();
    if (req.version !== PROTOCOL_VERSION) {
      return fail("bad_version", `protocol version ${req.version} is not supported (this side speaks ${PROTOCOL_VERSION}); upgrade banger so both sides match`, opId, req.method);
    }
    const reg = this.table.get(req.method);
    if (reg === undefined) return fail("unknown_method", `unknown method ${JSON.stringify(req.method)}`, opId, req.method);
    const params = reg.descriptor.params.safeParse(req.params ?? {});
    if (!params.success) return fail("bad_params", `invalid params for ${req.method}: ${formatZodError(params.error)}`, opId, req.method);
    let takeOver: StreamTakeOver | undefined;
    const upgrade = (fn: StreamTakeOver): void => { takeOver = fn; };
    try {
      const result: unknown = await reg.handler(params.data, { opId, method: req.method, peer, upgrade });
      const streaming = takeOver === undefined ? {} : { takeOver };
      if (!this.checkResults) return { response: { ok: true, result }, opId, method: req.method, ...streaming };
      const checked = reg.descriptor.result.safeParse(result);
      if (!checked.success) {
        onInternal?.(checked.error, opId);
        return fail("internal", `result of ${req.method} failed its schema: ${formatZodError(checked.error)}`, opId, req.method);
      }
      return { response: { ok: true, result: checked.data }, opId, method: req.method, ...streaming };
    } catch (e) {
      if (e instanceof RpcError) return fail(e.code, e.message, opId, req.method);
      onInternal?.(e, opId);
      return fail("internal", e instanceof Error ? e.message : String(e), opId, req.method);
    }
  }
}

function fail(code: RpcError["code"], message: string, opId: string, method: string | undefined): DispatchOutcome {
  return { response: { ok: false, error: { code, message, op_id: opId } }, opId, method };
}

function pickOpId(raw: unknown): string | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const v = (raw as { op_id?: unknown }).op_id;
  return typeof v === "string" && /^op-[0-9a-z]{6,32}$/.test(v) ? v : undefined;
}

function pickMethod(raw: unknown): string | undefined {
  if (typeof raw !== "object" || raw === null) return undefined;
  const v = (raw as { method?: unknown }).method;
  return typeof v === "string" ? v.slice(0, 128) : undefined;
}

export function formatZodError(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join(".") : "(root)"}: ${i.message}`)
    .join("; ");
}
