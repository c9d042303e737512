import { connect } from "node:net";
import type { Runner } from "../../system/runner.js";
import { sshArgv, sshCapture } from "../../system/ssh.js";
import type { SshProbe } from "./deps.js";

/**
 * Readiness = the guest's SSH server answers AND presents the pinned host
 * key. A cheap TCP banner check gates the (slower) real `ssh ... true`, so
 * the loop polls quickly while the guest boots without forking ssh each time.
 */
/** A connect on a local bridge completes in well under a millisecond once the guest answers ARP. */
const CONNECT_TIMEOUT_MS = 250;

export interface SshProbeOptions {
  readonly runner: Runner;
  readonly keyPath: string;
  readonly knownHostsPath: string;
  readonly pollMs?: number;
  readonly port?: number;
  readonly sshBin?: string;
}

/**
 * Whether an SSH server answers on ip:port. The connect gets a short timeout of its own: before the
 * guest's network is up nothing answers ARP, and the kernel would hold the connect for seconds, so a
 * long timeout would make readiness lag the guest by up to that much. Once connected, the server
 * gets longer to send its banner (a TCG guest forks its sshd child slowly).
 */
export function bannerCheck(ip: string, port: number, bannerTimeoutMs: number, connectTimeoutMs = CONNECT_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host: ip, port });
    let buf = "";
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    let timer = setTimeout(() => { done(false); }, Math.min(connectTimeoutMs, bannerTimeoutMs));
    sock.once("connect", () => {
      clearTimeout(timer);
      timer = setTimeout(() => { done(false); }, bannerTimeoutMs);
    });
    sock.on("data", (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      if (buf.length >= 4) done(buf.startsWith("SSH-"));
    });
    sock.on("error", () => { done(false); });
    sock.on("close", () => { done(false); });
  });
}

export function createSshProbe(opts: SshProbeOptions): SshProbe {
  const pollMs = opts.pollMs ?? 100;
  const port = opts.port ?? 22;
  return {
    async waitReady(target, { timeoutMs, signal }) {
      const deadline = Date.now() + timeoutMs;
      let last = "the guest's SSH port never answered";
      const argv = sshArgv({ keyPath: opts.keyPath, knownHostsPath: opts.knownHostsPath, host: target.ip, connectTimeoutS: 5, port }, { command: ["true"], tty: false, ...(opts.sshBin !== undefined ? { sshBin: opts.sshBin } : {}) });
      while (Date.now() < deadline) {
        signal.throwIfAborted();
        if (await bannerCheck(target.ip, port, Math.min(2000, Math.max(100, deadline - Date.now())))) {
          const r = await sshCapture(opts.runner, argv, { timeoutMs: Math.max(1000, Math.min(15_000, deadline - Date.now())), signal });
          if (r.exitCode === 0) return;
          const err = r.stderr.toString("utf8").trim();
          last = err !== "" ? `ssh answered but failed: ${err.split("\n").slice(-2).join(" | ")}` : `ssh exited ${r.exitCode}`;
          // A host key mismatch will not fix itself; fail now rather than at the timeout.
          if (/host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(err)) throw new Error(`${target.name} (${target.ip}) presented a host key other than the one banger pinned; refusing to trust it`);
        }
        await sleep(pollMs, signal);
      }
      throw new Error(`${target.name} (${target.ip}) was not ssh-ready after ${Math.round(timeoutMs / 1000)} s: ${last}`);
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => { signal.removeEventListener("abort", onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(t); reject(signal.reason instanceof Error ? signal.reason : new Error("aborted")); };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
