const HEX = "0123456789abcdef";

/** Mint an op id (`op-` + 12 hex chars). Uses the global Web Crypto so this module stays free of Node APIs. */
export function newOpId(): string {
  const bytes = new Uint8Array(6);
  globalThis.crypto.getRandomValues(bytes);
  let out = "op-";
  for (const b of bytes) out += (HEX[b >> 4] ?? "0") + (HEX[b & 15] ?? "0");
  return out;
}
