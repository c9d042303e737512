/**
 * Pure encoders for ed25519 SSH keys, so `vm create` writes host keys
 * without forking ssh-keygen/dropbearconvert. Byte layouts follow
 * OpenSSH's PROTOCOL.key ("openssh-key-v1") and dropbear's
 * buf_put_ed25519_priv_key; the unit tests compare our output byte for byte
 * with files written by those tools. No Node APIs beyond Buffer: the caller
 * supplies the key material and the random check integer.
 */

const KEY_TYPE = "ssh-ed25519";
const ED25519_LEN = 32;
const OPENSSH_MAGIC = "openssh-key-v1\0";
/** The "none" cipher's block size: the private section is padded to a multiple of it. */
const NONE_BLOCK_SIZE = 8;
/** OpenSSH's PEM body width (sshbuf_dtob64 with wrap): 70, not PEM's usual 64. */
const PEM_WIDTH = 70;

export interface Ed25519Key {
  /** The 32-byte private seed (RFC 8032 "private key"). */
  readonly seed: Buffer;
  /** The 32-byte public key. */
  readonly publicKey: Buffer;
}

function checkKey(key: Ed25519Key): void {
  if (key.seed.length !== ED25519_LEN || key.publicKey.length !== ED25519_LEN) {
    throw new Error(`an ed25519 key needs a ${ED25519_LEN}-byte seed and public key, got ${key.seed.length} and ${key.publicKey.length}`);
  }
}

/** SSH wire `uint32`, big-endian. */
export function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** SSH wire `string`: uint32 length then the bytes (RFC 4251 §5). */
export function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  return Buffer.concat([uint32(bytes.length), bytes]);
}

/** The public key blob: string "ssh-ed25519", string pubkey (RFC 8709 §4). */
export function ed25519PublicBlob(publicKey: Buffer): Buffer {
  if (publicKey.length !== ED25519_LEN) throw new Error(`an ed25519 public key is ${ED25519_LEN} bytes, got ${publicKey.length}`);
  return Buffer.concat([sshString(KEY_TYPE), sshString(publicKey)]);
}

/**
 * `ssh-ed25519 AAAA...[ comment]`, the authorized_keys / .pub line. A comment
 * with a line break would smuggle a second key into authorized_keys.
 */
export function ed25519PublicLine(publicKey: Buffer, comment = ""): string {
  if (/[\r\n\0]/.test(comment)) throw new Error("an SSH key comment must be one line");
  const body = `${KEY_TYPE} ${ed25519PublicBlob(publicKey).toString("base64")}`;
  return comment === "" ? body : `${body} ${comment}`;
}

/**
 * Unencrypted "openssh-key-v1" private key, PEM-armoured exactly as
 * `ssh-keygen -N ""` writes it. `checkInt` is a random uint32 that OpenSSH
 * repeats twice inside the private section (it detects a wrong passphrase
 * when the section is encrypted; here it only has to match itself).
 */
export function opensshPrivateKey(key: Ed25519Key, comment: string, checkInt: number): string {
  checkKey(key);
  if (!Number.isInteger(checkInt) || checkInt < 0 || checkInt > 0xffffffff) throw new Error(`checkInt must be a uint32, got ${checkInt}`);
  if (/[\r\n\0]/.test(comment)) throw new Error("an SSH key comment must be one line");
  const publicBlob = ed25519PublicBlob(key.publicKey);
  const unpadded = Buffer.concat([
    uint32(checkInt),
    uint32(checkInt),
    sshString(KEY_TYPE),
    sshString(key.publicKey),
    // OpenSSH stores the 64-byte "secret key" of the ref10 API: seed then public key.
    sshString(Buffer.concat([key.seed, key.publicKey])),
    sshString(comment),
  ]);
  // Padding bytes are 1, 2, 3, ...: OpenSSH's loader checks them, so zeros would be refused.
  const padLen = (NONE_BLOCK_SIZE - (unpadded.length % NONE_BLOCK_SIZE)) % NONE_BLOCK_SIZE;
  const padding = Buffer.from(Array.from({ length: padLen }, (_, i) => i + 1));
  const body = Buffer.concat([
    Buffer.from(OPENSSH_MAGIC, "latin1"),
    sshString("none"), // cipher
    sshString("none"), // kdf
    sshString(""), // kdf options
    uint32(1), // number of keys
    sshString(publicBlob),
    sshString(Buffer.concat([unpadded, padding])),
  ]);
  const b64 = body.toString("base64");
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += PEM_WIDTH) lines.push(b64.slice(i, i + PEM_WIDTH));
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

/**
 * Dropbear's own binary host key file (what `dropbearkey -t ed25519` writes
 * and `dropbear -r` reads): string "ssh-ed25519", uint32 64, seed, public key.
 * Not a nested SSH string: the length is followed by two raw 32-byte fields.
 */
export function dropbearPrivateKey(key: Ed25519Key): Buffer {
  checkKey(key);
  return Buffer.concat([sshString(KEY_TYPE), uint32(2 * ED25519_LEN), key.seed, key.publicKey]);
}
