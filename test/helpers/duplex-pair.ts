import { Duplex } from "node:stream";

interface End extends Duplex {
  peer: End | undefined;
  /** The acknowledgement of the peer's last write, held while this end's read buffer is full. */
  pending: (() => void) | undefined;
}

/**
 * Two connected in-memory duplexes with a socket's flow control: bytes
 * written to one are read from the other, and a write is not acknowledged
 * (so write() starts returning false) until the reader has room for it.
 */
export function duplexPair(highWaterMark = 16 * 1024): [Duplex, Duplex] {
  const make = (): End => {
    const d = new Duplex({
      highWaterMark,
      allowHalfOpen: true,
      read() {
        const p = d.pending;
        d.pending = undefined;
        p?.();
      },
      write(chunk: Buffer, _enc, cb) {
        const peer = d.peer;
        if (peer === undefined || peer.destroyed) cb();
        else if (peer.push(chunk)) cb();
        else peer.pending = () => { cb(); };
      },
      final(cb) {
        d.peer?.push(null);
        cb();
      },
      destroy(err, cb) {
        const peer = d.peer;
        if (peer !== undefined && !peer.destroyed) peer.destroy();
        cb(err);
      },
    }) as End;
    d.peer = undefined;
    d.pending = undefined;
    return d;
  };
  const a = make();
  const b = make();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
