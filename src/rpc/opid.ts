const HEX = "0123456789abcdef";

/**
 * Mint an op id (`op-` + 12 hex chars). An op id correlates log lines across
 * CLI, daemon and helper; it is neither a secret nor a capability (both
 * sockets admit only their owner), so it needs uniqueness, not unpredictability.
 * Math.random gives that: V8 seeds it per process from the OS's random source,
 * and 48 bits make a collision within one daemon's life negligible. Web Crypto
 * was used before, but loading it cost every CLI invocation ~1.5 ms of start-up
 * (`banger vm list` must stay within 1.5x a bare `node -e 0`).
 */
export function newOpId(): string {
  let out = "op-";
  for (let i = 0; i < 12; i++) out += HEX[Math.floor(Math.random() * 16)] ?? "0";
  return out;
}
