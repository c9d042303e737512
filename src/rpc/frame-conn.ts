import { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { encodeFrame, FrameDecoder, FrameError, type Frame } from "./frames.js";

/**
 * One connection carrying frames, for either end (daemon or client). Reading
 * is flow-controlled by the consumer: `pause()` stops reading the socket
 * (the kernel buffer then fills and the peer's writes start returning false),
 * `resume()` starts again. Writing reports the socket's own backpressure:
 * `send` returns write()'s value and `drained()` waits for 'drain'.
 *
 * Events: 'frame' (Frame), 'end' (the peer will send nothing more),
 * 'close' (the connection is gone), 'bad' (FrameError: the peer broke the
 * protocol; the connection is destroyed).
 */
export class FrameConn extends EventEmitter {
  private readonly decoder = new FrameDecoder();
  private closed = false;
  private pauses = 0;

  constructor(private readonly conn: Duplex, head: Uint8Array = new Uint8Array(0)) {
    super();
    conn.on("data", (chunk: Buffer) => { this.take(chunk); });
    conn.on("end", () => { this.emit("end"); });
    conn.on("close", () => {
      this.closed = true;
      this.emit("close");
    });
    conn.on("error", () => undefined);
    // The first frames may have come in with the answer line; deliver them after listeners attach.
    queueMicrotask(() => {
      // Handed over already gone (the peer left while the method ran): say so once, as a close would.
      if (conn.destroyed) {
        this.closed = true;
        this.emit("close");
        return;
      }
      if (head.length > 0) this.take(head);
      if (this.pauses === 0) conn.resume();
    });
  }

  private take(chunk: Uint8Array): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      this.emit("bad", e instanceof FrameError ? e : new FrameError(String(e)));
      this.destroy();
      return;
    }
    for (const f of frames) this.emit("frame", f);
  }

  get isClosed(): boolean {
    return this.closed || this.conn.destroyed;
  }

  /** Writes a frame; false means the socket's buffer is full: wait for drained() before sending more data. */
  send(f: Frame): boolean {
    if (this.isClosed || this.conn.writableEnded) return false;
    return this.conn.write(encodeFrame(f));
  }

  /** Resolves once the socket has room again (at once when it has, or when the connection is gone). */
  drained(): Promise<void> {
    if (this.isClosed || !this.conn.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.conn.off("drain", done);
        this.conn.off("close", done);
        resolve();
      };
      this.conn.on("drain", done);
      this.conn.on("close", done);
    });
  }

  /** Nested: reading resumes when every pause() has had its resume(). */
  pause(): void {
    this.pauses++;
    this.conn.pause();
  }

  resume(): void {
    if (this.pauses > 0) this.pauses--;
    if (this.pauses === 0 && !this.isClosed) this.conn.resume();
  }

  /** Half-closes: the peer reads EOF after what was sent; reading goes on. */
  end(): void {
    if (!this.conn.writableEnded) this.conn.end();
  }

  destroy(): void {
    this.conn.destroy();
  }
}
