/**
 * The exec channel's wire frames, after a streaming method's ok line:
 *
 *   u32 big-endian length of what follows · u8 type · payload
 *
 * Plain Uint8Array and DataView only (no Node APIs), so the same codec serves
 * the daemon, the CLI and any other client. Payloads:
 *   stdin, stdout, stderr  raw bytes (may be empty only for stdin; an empty one is dropped)
 *   stdin-eof              none
 *   signal                 the signal's name without SIG, ASCII ("TERM", "INT", "KILL", ...)
 *   resize                 u16 cols · u16 rows
 *   exit                   JSON {"code": number|null, "signal": string|null}
 *   error                  JSON {"code": string, "message": string}
 */
export const FRAME_TYPES = {
  stdin: 1,
  stdinEof: 2,
  stdout: 3,
  stderr: 4,
  signal: 5,
  resize: 6,
  exit: 7,
  error: 8,
} as const;

/** Largest payload a decoder accepts; encoders split data into frames no bigger than this. */
export const MAX_FRAME_PAYLOAD = 256 * 1024;
const HEADER = 5;
const SIGNAL_RE = /^[A-Z][A-Z0-9]{0,15}$/;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: string | null;
}

export type Frame =
  | { readonly type: "stdin" | "stdout" | "stderr"; readonly data: Uint8Array }
  | { readonly type: "stdin-eof" }
  | { readonly type: "signal"; readonly signal: string }
  | { readonly type: "resize"; readonly cols: number; readonly rows: number }
  | { readonly type: "exit"; readonly status: ExitStatus }
  | { readonly type: "error"; readonly code: string; readonly message: string };

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "FrameError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

function frame(type: number, payload: Uint8Array): Uint8Array {
  if (payload.length > MAX_FRAME_PAYLOAD) throw new FrameError(`frame payload of ${payload.length} bytes exceeds ${MAX_FRAME_PAYLOAD}`);
  const out = new Uint8Array(HEADER + payload.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, 1 + payload.length);
  out[4] = type;
  out.set(payload, HEADER);
  return out;
}

/**
 * Encodes one frame. Data frames larger than MAX_FRAME_PAYLOAD are split, so
 * the result is one or more frames back to back.
 */
export function encodeFrame(f: Frame): Uint8Array {
  switch (f.type) {
    case "stdin":
    case "stdout":
    case "stderr": {
      const type = FRAME_TYPES[f.type];
      if (f.data.length <= MAX_FRAME_PAYLOAD) return frame(type, f.data);
      const parts: Uint8Array[] = [];
      for (let at = 0; at < f.data.length; at += MAX_FRAME_PAYLOAD) parts.push(frame(type, f.data.subarray(at, at + MAX_FRAME_PAYLOAD)));
      return concat(parts);
    }
    case "stdin-eof":
      return frame(FRAME_TYPES.stdinEof, new Uint8Array(0));
    case "signal":
      if (!SIGNAL_RE.test(f.signal)) throw new FrameError(`signal ${JSON.stringify(f.signal)} is not a signal name like TERM`);
      return frame(FRAME_TYPES.signal, encoder.encode(f.signal));
    case "resize": {
      checkSize(f.cols, f.rows);
      const p = new Uint8Array(4);
      const v = new DataView(p.buffer);
      v.setUint16(0, f.cols);
      v.setUint16(2, f.rows);
      return frame(FRAME_TYPES.resize, p);
    }
    case "exit":
      return frame(FRAME_TYPES.exit, encoder.encode(JSON.stringify({ code: f.status.code, signal: f.status.signal })));
    case "error":
      return frame(FRAME_TYPES.error, encoder.encode(JSON.stringify({ code: f.code, message: f.message.slice(0, 8192) })));
  }
}

function checkSize(cols: number, rows: number): void {
  const ok = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= 10_000;
  if (!ok(cols) || !ok(rows)) throw new FrameError(`terminal size ${cols}x${rows} is out of range (1..10000)`);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function parseJsonObject(payload: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(decoder.decode(payload));
  } catch {
    throw new FrameError(`${what} frame is not JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new FrameError(`${what} frame is not a JSON object`);
  return v as Record<string, unknown>;
}

function decodeOne(type: number, payload: Uint8Array): Frame | undefined {
  switch (type) {
    case FRAME_TYPES.stdin:
      return { type: "stdin", data: payload };
    case FRAME_TYPES.stdout:
      return { type: "stdout", data: payload };
    case FRAME_TYPES.stderr:
      return { type: "stderr", data: payload };
    case FRAME_TYPES.stdinEof:
      if (payload.length !== 0) throw new FrameError("stdin-eof frame carries a payload");
      return { type: "stdin-eof" };
    case FRAME_TYPES.signal: {
      const s = payload.length <= 16 ? String.fromCharCode(...payload) : "";
      if (!SIGNAL_RE.test(s)) throw new FrameError("signal frame does not name a signal");
      return { type: "signal", signal: s };
    }
    case FRAME_TYPES.resize: {
      if (payload.length !== 4) throw new FrameError("resize frame is not 4 bytes");
      const v = new DataView(payload.buffer, payload.byteOffset, 4);
      const cols = v.getUint16(0);
      const rows = v.getUint16(2);
      checkSize(cols, rows);
      return { type: "resize", cols, rows };
    }
    case FRAME_TYPES.exit: {
      const o = parseJsonObject(payload, "exit");
      const code = o["code"];
      const signal = o["signal"];
      if (!(code === null || (typeof code === "number" && Number.isInteger(code)))) throw new FrameError("exit frame code is not an integer or null");
      if (!(signal === null || (typeof signal === "string" && SIGNAL_RE.test(signal)))) throw new FrameError("exit frame signal is not a signal name or null");
      return { type: "exit", status: { code, signal } };
    }
    case FRAME_TYPES.error: {
      const o = parseJsonObject(payload, "error");
      const code = o["code"];
      const message = o["message"];
      if (typeof code !== "string" || typeof message !== "string") throw new FrameError("error frame lacks code/message strings");
      return { type: "error", code, message };
    }
    default:
      // Unknown types are skipped: a newer peer may add frames an older one can ignore.
      return undefined;
  }
}

/**
 * Incremental decoder: feed it chunks as they arrive, take whole frames out.
 * It holds at most one partial frame (≤ MAX_FRAME_PAYLOAD + header), so a
 * peer cannot make it buffer without bound; a longer length is an error.
 */
export class FrameDecoder {
  private pending: Uint8Array = new Uint8Array(0);

  /** Decodes every whole frame in what has arrived so far. Throws FrameError on a malformed stream. */
  push(chunk: Uint8Array): Frame[] {
    const buf = this.pending.length === 0 ? chunk : concat([this.pending, chunk]);
    const out: Frame[] = [];
    let at = 0;
    while (buf.length - at >= HEADER) {
      const view = new DataView(buf.buffer, buf.byteOffset + at, HEADER);
      const len = view.getUint32(0);
      if (len < 1 || len - 1 > MAX_FRAME_PAYLOAD) throw new FrameError(`frame length ${len} is out of range`);
      if (buf.length - at < 4 + len) break;
      const type = view.getUint8(4);
      // Copy: the payload must not pin (or alias) the caller's larger chunk.
      const payload = buf.slice(at + HEADER, at + 4 + len);
      at += 4 + len;
      const f = decodeOne(type, payload);
      if (f !== undefined) out.push(f);
    }
    this.pending = at === buf.length ? new Uint8Array(0) : buf.slice(at);
    return out;
  }

  /** Bytes of a partial frame still waiting for the rest. */
  get buffered(): number {
    return this.pending.length;
  }
}
