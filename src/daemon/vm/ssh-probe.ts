import { readFile } from "node:fs/promises";
import type { SshProbe } from "./deps.js";
import { checkHostKey, NotListeningError } from "./ssh-handshake.js";

/**
 * Readiness = the guest's SSH server answers AND proves it holds the pinned
 * host key, checked in-process by an SSH key exchange (ssh-handshake.ts):
 * no ssh client is forked per VM, and a poll costs one TCP connect while
 * nothing listens yet.
 */
/**
 * How long one connect may wait for the guest to answer ARP. bangerd-root makes the kernel ask
 * every 100 ms on banger's bridge (fastNeighbourProbing), so a pending connect is sent the moment
 * the guest's network is up, and the daemon wakes every few seconds per booting VM, not ten times
 * a second. The kernel gives up after ~3 s; the loop then starts another.
 */
const CONNECT_TIMEOUT_MS = 3_500;

export interface SshProbeOptions {
  /** banger's known_hosts, where create pinned the VM's host key before booting it. */
  readonly knownHostsPath: string;
  readonly pollMs?: number;
  readonly port?: number;
}

export function createSshProbe(opts: SshProbeOptions): SshProbe {
  const pollMs = opts.pollMs ?? 100;
  const port = opts.port ?? 22;
  return {
    async waitReady(target, { timeoutMs, signal }) {
      const deadline = Date.now() + timeoutMs;
      let last = "the guest's SSH port never answered";
      // Pinned before the VMM started, so it cannot change while we wait.
      const pinned = await pinnedKey(opts.knownHostsPath, target.ip);
      while (Date.now() < deadline) {
        signal.throwIfAborted();
        try {
          const r = await checkHostKey(target.ip, port, pinned, { connectTimeoutMs: CONNECT_TIMEOUT_MS, timeoutMs: Math.max(1000, Math.min(15_000, deadline - Date.now())) });
          if (r.ok) return;
          // A different host key will not fix itself; fail now rather than at the timeout.
          throw new HostKeyMismatchError(`${target.name} (${target.ip}) presented a host key other than the one banger pinned (${r.presented}); refusing to trust it`);
        } catch (e) {
          if (e instanceof HostKeyMismatchError) throw e;
          last = e instanceof NotListeningError ? "the guest's SSH port never answered" : `SSH answered but the key exchange failed: ${e instanceof Error ? e.message : String(e)}`;
        }
        await sleep(pollMs, signal);
      }
      throw new Error(`${target.name} (${target.ip}) was not ssh-ready after ${Math.round(timeoutMs / 1000)} s: ${last}`);
    },
  };
}

class HostKeyMismatchError extends Error {
  override readonly name = "HostKeyMismatchError";
}

/** The host key pinned for `ip` in banger's known_hosts (`name.vm,ip ssh-ed25519 BASE64`), decoded. */
async function pinnedKey(knownHostsPath: string, ip: string): Promise<Buffer> {
  const text = await readFile(knownHostsPath, "utf8").catch((e: unknown) => {
    throw new Error(`cannot read the pinned host keys (${knownHostsPath}): ${e instanceof Error ? e.message : String(e)}`);
  });
  for (const line of text.split("\n")) {
    const [hosts, type, body] = line.trim().split(/\s+/);
    if (hosts?.split(",").includes(ip) === true && type === "ssh-ed25519" && body !== undefined) return Buffer.from(body, "base64");
  }
  throw new Error(`no ssh-ed25519 host key is pinned for ${ip} in ${knownHostsPath}`);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal.reason instanceof Error ? signal.reason : new Error("aborted")); };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
