import { createHash, createPublicKey, diffieHellman, generateKeyPairSync, randomBytes, verify, type KeyPairKeyObjectResult } from "node:crypto";
import { connect } from "node:net";
import { sshString, uint32 } from "../../model/ssh-key-format.js";

/**
 * Proves that the SSH server at ip:port holds a given ed25519 host key, by
 * running the SSH key exchange up to the server's signed reply (RFC 4253 §7-8,
 * curve25519-sha256 per RFC 8731, ssh-ed25519 per RFC 8709) and checking the
 * signature over the exchange hash. No authentication, no session: this is
 * "SSH answers with its pinned host key" without forking an ssh client per
 * VM, and the guest only spends one key exchange on it.
 */
export type HostKeyCheck = { readonly ok: true } | { readonly ok: false; readonly reason: "mismatch"; readonly presented: string };

const CLIENT_VERSION = "SSH-2.0-banger_readiness";
const KEX_ALGORITHMS = ["curve25519-sha256", "curve25519-sha256@libssh.org"];
const HOST_KEY_ALGORITHM = "ssh-ed25519";
// Offered only so the server can complete negotiation; the exchange stops before any of them is used.
const CIPHERS = "aes128-ctr,aes256-ctr,chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com";
const MACS = "hmac-sha2-256,hmac-sha2-512,hmac-sha1";
const MSG_DISCONNECT = 1;
const MSG_IGNORE = 2;
const MSG_DEBUG = 4;
const MSG_KEXINIT = 20;
const MSG_KEX_ECDH_INIT = 30;
const MSG_KEX_ECDH_REPLY = 31;
const MAX_PACKET = 256 * 1024;
const MAX_PREAMBLE = 16 * 1024;

function nameList(names: string): Buffer {
  return sshString(names);
}

/** An unencrypted binary packet: length, padding length, payload, 4..n random padding to a multiple of 8. */
export function packet(payload: Buffer): Buffer {
  let padding = 8 - ((5 + payload.length) % 8);
  if (padding < 4) padding += 8;
  return Buffer.concat([uint32(1 + payload.length + padding), Buffer.from([padding]), payload, randomBytes(padding)]);
}

/** mpint of an unsigned big-endian byte string: leading zeros dropped, a zero byte added if the top bit is set. */
export function mpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  const body = unsigned.subarray(i);
  return sshString((body[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), body]) : body);
}

/** Sequential reader of SSH wire types; throws on truncated input. */
export class WireReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}

  byte(): number {
    const v = this.buf[this.at];
    if (v === undefined) throw new Error("truncated SSH message");
    this.at++;
    return v;
  }

  string(): Buffer {
    if (this.at + 4 > this.buf.length) throw new Error("truncated SSH message");
    const len = this.buf.readUInt32BE(this.at);
    if (this.at + 4 + len > this.buf.length) throw new Error("truncated SSH message");
    const v = this.buf.subarray(this.at + 4, this.at + 4 + len);
    this.at += 4 + len;
    return v;
  }

  skip(n: number): void {
    if (this.at + n > this.buf.length) throw new Error("truncated SSH message");
    this.at += n;
  }
}

function kexinit(): Buffer {
  return Buffer.concat([
    Buffer.from([MSG_KEXINIT]),
    randomBytes(16),
    nameList(KEX_ALGORITHMS.join(",")),
    nameList(HOST_KEY_ALGORITHM),
    nameList(CIPHERS),
    nameList(CIPHERS),
    nameList(MACS),
    nameList(MACS),
    nameList("none"),
    nameList("none"),
    nameList(""),
    nameList(""),
    Buffer.from([0]),
    uint32(0),
  ]);
}

/** The server's KEXINIT must offer what we can verify; anything else is a clear error, not a hang. */
function checkServerKexinit(payload: Buffer): void {
  const r = new WireReader(payload);
  r.byte();
  r.skip(16);
  const kex = r.string().toString("latin1").split(",");
  const hostKeys = r.string().toString("latin1").split(",");
  if (!KEX_ALGORITHMS.some((k) => kex.includes(k))) throw new Error(`the SSH server offers no curve25519 key exchange (it offers ${kex.join(",")})`);
  if (!hostKeys.includes(HOST_KEY_ALGORITHM)) throw new Error(`the SSH server offers no ssh-ed25519 host key (it offers ${hostKeys.join(",")})`);
}

function ed25519Key(blob: Buffer): Buffer {
  const r = new WireReader(blob);
  const type = r.string().toString("latin1");
  const key = r.string();
  if (type !== HOST_KEY_ALGORITHM || key.length !== 32) throw new Error(`the SSH server presented a ${type} host key, not ssh-ed25519`);
  return key;
}

function fromRaw(crv: "X25519" | "Ed25519", raw: Buffer): ReturnType<typeof createPublicKey> {
  return createPublicKey({ key: { kty: "OKP", crv, x: raw.toString("base64url") }, format: "jwk" });
}

interface Exchange {
  readonly serverVersion: string;
  readonly serverKexinit: Buffer;
  readonly reply: Buffer;
}

export interface HandshakeTimeouts {
  /** For the whole exchange. */
  readonly timeoutMs: number;
  /**
   * For the TCP connect alone, kept short: before a guest's network is up nothing answers ARP
   * and the kernel would hold a connect for seconds, making readiness lag the guest.
   */
  readonly connectTimeoutMs?: number;
}

/** Nothing accepted the connection (yet): the caller may simply try again later. */
export class NotListeningError extends Error {
  override readonly name = "NotListeningError";
}

/**
 * Checks the server at ip:port against `pinnedBlob` (the host key as in known_hosts, decoded).
 * Resolves {ok:true} when the server proved it holds that key, {ok:false} when it presented
 * another one; rejects when it could not tell (nothing listening, protocol error, timeout).
 */
export async function checkHostKey(ip: string, port: number, pinnedBlob: Buffer, timeouts: HandshakeTimeouts): Promise<HostKeyCheck> {
  // Made only once a server answers: while a guest boots, most attempts never get that far.
  let ours: KeyPairKeyObjectResult | undefined;
  let qc: Buffer = Buffer.alloc(0);
  let clientKexinit: Buffer = Buffer.alloc(0);
  const ex = await exchange(ip, port, timeouts, {
    kexinit: () => (clientKexinit = kexinit()),
    ephemeral: () => {
      ours = generateKeyPairSync("x25519");
      qc = Buffer.from(ours.publicKey.export({ format: "jwk" }).x ?? "", "base64url");
      return qc;
    },
  });
  if (ours === undefined) throw new Error("the SSH key exchange ended before our key was sent");
  const r = new WireReader(ex.reply);
  r.byte();
  const ks = r.string();
  const qs = r.string();
  const sigBlob = r.string();
  const serverKey = ed25519Key(ks);
  if (qs.length !== 32) throw new Error("the SSH server sent a malformed curve25519 key");
  const shared = diffieHellman({ privateKey: ours.privateKey, publicKey: fromRaw("X25519", qs) });
  const hash = createHash("sha256")
    .update(Buffer.concat([sshString(CLIENT_VERSION), sshString(ex.serverVersion), sshString(clientKexinit), sshString(ex.serverKexinit), sshString(ks), sshString(qc), sshString(qs), mpint(shared)]))
    .digest();
  const sr = new WireReader(sigBlob);
  const sigType = sr.string().toString("latin1");
  const sig = sr.string();
  if (sigType !== HOST_KEY_ALGORITHM || !verify(null, hash, fromRaw("Ed25519", serverKey), sig)) {
    throw new Error("the SSH server's key exchange signature does not verify");
  }
  // Only now is the presented key known to be the server's own: compare it with the pin.
  if (!ks.equals(pinnedBlob)) return { ok: false, reason: "mismatch", presented: `${HOST_KEY_ALGORITHM} ${ks.toString("base64")}` };
  return { ok: true };
}

/** Our side of the exchange, made on demand: the KEXINIT payload on connect, the curve25519 public key on the server's KEXINIT. */
interface ClientSide {
  readonly kexinit: () => Buffer;
  readonly ephemeral: () => Buffer;
}

function exchange(ip: string, port: number, timeouts: HandshakeTimeouts, client: ClientSide): Promise<Exchange> {
  const { timeoutMs, connectTimeoutMs = timeoutMs } = timeouts;
  return new Promise((resolve, reject) => {
    // No Nagle: the version line and KEXINIT go in two writes, and the second must not wait for an ACK.
    const sock = connect({ host: ip, port, noDelay: true });
    let connected = false;
    let buf = Buffer.alloc(0);
    let serverVersion: string | undefined;
    let serverKexinit: Buffer | undefined;
    let settled = false;
    const finish = (err: Error | undefined, value?: Exchange): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      if (err !== undefined) reject(err);
      else if (value !== undefined) resolve(value);
    };
    let timer = setTimeout(() => { finish(new NotListeningError(`nothing accepted a connection on ${ip}:${port} within ${connectTimeoutMs} ms`)); }, Math.min(connectTimeoutMs, timeoutMs));
    sock.on("connect", () => {
      connected = true;
      clearTimeout(timer);
      timer = setTimeout(() => { finish(new Error(`no SSH key exchange with ${ip}:${port} within ${timeoutMs} ms`)); }, timeoutMs);
      sock.write(`${CLIENT_VERSION}\r\n`);
      sock.write(packet(client.kexinit()));
    });
    sock.on("error", (e) => { finish(connected ? new Error(`SSH to ${ip}:${port}: ${e.message}`) : new NotListeningError(`SSH to ${ip}:${port}: ${e.message}`)); });
    sock.on("close", () => { finish(new Error(`${ip}:${port} closed the connection during the SSH key exchange`)); });
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      try {
        // The server may send other lines before its identification string (RFC 4253 §4.2).
        while (serverVersion === undefined) {
          const nl = buf.indexOf(0x0a);
          if (nl === -1) {
            if (buf.length > MAX_PREAMBLE) throw new Error(`${ip}:${port} sent no SSH identification`);
            return;
          }
          const line = buf.subarray(0, nl).toString("latin1").replace(/\r$/, "");
          buf = buf.subarray(nl + 1);
          if (line.startsWith("SSH-")) {
            if (!line.startsWith("SSH-2.0-") && !line.startsWith("SSH-1.99-")) throw new Error(`${ip}:${port} speaks ${line}, not SSH 2`);
            serverVersion = line;
          }
        }
        for (;;) {
          if (buf.length < 4) return;
          const len = buf.readUInt32BE(0);
          if (len < 5 || len > MAX_PACKET) throw new Error(`${ip}:${port} sent a malformed SSH packet`);
          if (buf.length < 4 + len) return;
          const padding = buf[4] ?? 0;
          const payload = buf.subarray(5, 4 + len - padding);
          buf = buf.subarray(4 + len);
          const type = payload[0];
          if (type === MSG_IGNORE || type === MSG_DEBUG) continue;
          if (type === MSG_DISCONNECT) throw new Error(`${ip}:${port} disconnected during the SSH key exchange`);
          if (serverKexinit === undefined) {
            if (type !== MSG_KEXINIT) throw new Error(`${ip}:${port} sent SSH message ${String(type)} before KEXINIT`);
            checkServerKexinit(payload);
            serverKexinit = Buffer.from(payload);
            sock.write(packet(Buffer.concat([Buffer.from([MSG_KEX_ECDH_INIT]), sshString(client.ephemeral())])));
            continue;
          }
          if (type !== MSG_KEX_ECDH_REPLY) throw new Error(`${ip}:${port} sent SSH message ${String(type)} instead of the key exchange reply`);
          finish(undefined, { serverVersion, serverKexinit, reply: Buffer.from(payload) });
          return;
        }
      } catch (e) {
        finish(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}
