import { spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { systemRunner } from "../../src/system/runner.js";
import type { NetNs } from "./netns.js";

/**
 * An OpenSSH server inside a test's network namespace, with its own config, host key and
 * authorized_keys in a temp dir: a "remote host" for contexts. Each port gets its own session
 * environment (`SetEnv`), so one server can play a host with banger on the PATH and one without.
 * The ssh client side gets a key pair and the known_hosts line for the server's key.
 */
export interface TestSshd {
  readonly dir: string;
  /** The host key line ("ssh-ed25519 AAAA..."), for a client's known_hosts. */
  readonly hostPublicKey: string;
  log(): string;
  stop(): Promise<void>;
}

export interface SshdOptions {
  readonly netns: NetNs;
  readonly address: string;
  /** Port → the environment of sessions that log in on it. */
  readonly ports: ReadonlyMap<number, Readonly<Record<string, string>>>;
  readonly user: string;
  /** Public key lines allowed to log in as `user`. */
  readonly authorizedKeys: readonly string[];
}

/** `ssh-keygen` an ed25519 pair at `path` (and path.pub); returns the public line. */
export async function makeKeyPair(path: string, comment: string): Promise<string> {
  await systemRunner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path]);
  return readFileSync(`${path}.pub`, "utf8").trim();
}

function setEnvLine(env: Readonly<Record<string, string>>): string {
  for (const [k, v] of Object.entries(env)) if (!/^[A-Z_][A-Z0-9_]*$/.test(k) || /[\s"]/.test(v)) throw new Error(`SetEnv ${k}=${v}: no spaces or quotes`);
  return `SetEnv ${Object.entries(env).map(([k, v]) => `${k}=${v}`).join(" ")}`;
}

/** Starts one sshd per port (so each has its own SetEnv) and waits until all listen. */
export async function startSshd(opts: SshdOptions): Promise<TestSshd> {
  const dir = mkdtempSync("/tmp/bgt-sshd-");
  chmodSync(dir, 0o755);
  // sshd refuses to start without its privilege separation dir; made here only when missing, removed with the server.
  const privsep = "/run/sshd";
  const madePrivsep = !existsSync(privsep);
  if (madePrivsep) mkdirSync(privsep, { mode: 0o755 });
  const hostPublicKey = await makeKeyPair(join(dir, "host_ed25519"), "bgt-sshd-host");
  writeFileSync(join(dir, "authorized_keys"), opts.authorizedKeys.join("\n") + "\n", { mode: 0o644 });
  const logFile = join(dir, "sshd.log");
  writeFileSync(logFile, "");
  const children: ReturnType<typeof spawn>[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map(async (c) => {
      if (c.exitCode !== null || c.signalCode !== null) return;
      const gone = new Promise<void>((r) => c.once("exit", () => { r(); }));
      c.kill("SIGTERM");
      await gone;
    }));
    rmSync(dir, { recursive: true, force: true });
    if (madePrivsep) rmSync(privsep, { recursive: true, force: true });
  };
  try {
    const { openSync } = await import("node:fs");
    for (const [port, env] of opts.ports) {
      const config = join(dir, `sshd-${port}.conf`);
      writeFileSync(config, [
        `Port ${port}`,
        `ListenAddress ${opts.address}`,
        `HostKey ${join(dir, "host_ed25519")}`,
        `PidFile ${join(dir, `sshd-${port}.pid`)}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        `AllowUsers ${opts.user}`,
        // The temp dir is root's and 0755, not the user's: StrictModes would refuse the key file in it.
        "StrictModes no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "PermitRootLogin no",
        "LogLevel VERBOSE",
        setEnvLine(env),
        "",
      ].join("\n"), { mode: 0o600 });
      const argv = opts.netns.exec(["/usr/sbin/sshd", "-D", "-e", "-f", config]);
      const fd = openSync(logFile, "a");
      children.push(spawn(argv[0] ?? "", argv.slice(1), { stdio: ["ignore", fd, fd] }));
    }
    for (let i = 0; i < 200; i++) {
      const text = readFileSync(logFile, "utf8");
      if ([...opts.ports.keys()].every((p) => text.includes(`port ${p}.`))) break;
      if (children.some((c) => c.exitCode !== null)) throw new Error(`sshd exited: ${text}`);
      await sleep(50);
    }
    const text = readFileSync(logFile, "utf8");
    if (![...opts.ports.keys()].every((p) => text.includes(`port ${p}.`))) throw new Error(`sshd did not listen: ${text}`);
  } catch (e) {
    await stop();
    throw e;
  }
  return { dir, hostPublicKey, log: () => { try { return readFileSync(logFile, "utf8"); } catch { return ""; } }, stop };
}
