import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { MountNs } from "./mount-ns.js";
import type { NetNs } from "./netns.js";
import type { TestUser } from "./users.js";

const DIST = resolve(import.meta.dirname, "..", "..");
export const BIN = {
  banger: join(DIST, "bin", "banger.cjs"),
  bangerd: join(DIST, "bin", "bangerd.cjs"),
  helper: join(DIST, "bin", "bangerd-root.cjs"),
};

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * A production-shaped banger installation for tests: bangerd-root as root,
 * bangerd as the non-root test user, both optionally inside a network
 * namespace, all files under one temp dir that `stop()` removes.
 */
export interface Stack {
  readonly base: string;
  readonly stateDir: string;
  readonly runtimeDir: string;
  /** The helper's socket dir, root's; its vm/ holds the VMMs' run dirs. */
  readonly helperDir: string;
  readonly env: Record<string, string>;
  cli(args: readonly string[], opts?: CliOptions): Promise<CliResult>;
  /** `cli`, returned while it runs: its output so far, and a way to signal it (Ctrl-C is SIGINT). */
  cliStart(args: readonly string[], opts?: CliOptions): RunningCli;
  daemonLog(): string;
  helperLog(): string;
  /** Pids of the running bangerd and bangerd-root (the wrappers that start them exec, so these are the node processes). */
  pids(): { daemon: number | undefined; helper: number | undefined };
  stopDaemon(): Promise<void>;
  /** SIGKILL bangerd (a crash: no shutdown code runs) and wait until it is gone. */
  killDaemon(): Promise<void>;
  /** Start bangerd again (in `mountNs` when given, else the stack's own). */
  startDaemon(mountNs?: MountNs): Promise<void>;
  /** SIGKILL bangerd-root (VMMs it launched live on in their own sessions) and wait until it is gone. */
  killHelper(): Promise<void>;
  /** Start bangerd-root again; nothing when it runs. */
  startHelper(): Promise<void>;
  stop(): Promise<void>;
}

export interface RunningCli {
  readonly result: Promise<CliResult>;
  output(): { stdout: string; stderr: string };
  signal(sig: NodeJS.Signals): void;
}

export interface CliOptions {
  readonly timeoutMs?: number;
  readonly stdin?: string;
  /**
   * Run the CLI in the host's network namespace, not the stack's: a command that only talks to the
   * daemon (its unix socket is a path, reachable from any namespace) then starts as a user's would,
   * without the ~10 ms of `ip netns exec` (a benchmark times that start).
   */
  readonly hostNetns?: boolean;
}

export interface StackOptions {
  readonly user: TestUser;
  readonly netns?: NetNs;
  readonly config?: string;
  /** Keep the state dir (e.g. a shared image cache) at this path instead of a fresh one. */
  readonly stateDir?: string;
  /** Extra node flags for bangerd (e.g. --cpu-prof when profiling a benchmark). */
  readonly daemonNodeFlags?: readonly string[];
  /** Node flags for bangerd-root (e.g. --perf-basic-prof when profiling). */
  readonly helperNodeFlags?: readonly string[];
  /** Run bangerd inside this mount namespace (e.g. one with a stand-in /dev/kvm). */
  readonly daemonMountNs?: MountNs;
}

/**
 * A test's helper never edits the host's /etc/hosts (network.host_dns = auto picks the hosts file on
 * a host without systemd-resolved): unless the config names a hosts file, it gets its own, in a
 * root-owned `etc/` of the stack's dir.
 */
function ownHostsFile(config: string, base: string): string {
  if (/^\s*hosts_file\s*=/m.test(config)) return config;
  const etc = join(base, "etc");
  mkdirSync(etc, { mode: 0o755 });
  writeFileSync(join(etc, "hosts"), "127.0.0.1 localhost\n", { mode: 0o644 });
  const line = `hosts_file = "${join(etc, "hosts")}"\n`;
  return /^\[network\][ \t]*$/m.test(config) ? config.replace(/^\[network\][ \t]*$/m, (h) => `${h}\n${line.trimEnd()}`) : `[network]\n${line}${config}`;
}

function asUser(user: TestUser, argv: readonly string[], netns?: NetNs): string[] {
  const drop = ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", ...argv];
  return netns !== undefined ? netns.exec(drop) : drop;
}

/** Until `path` exists, or (`stale`: a killed process left its socket behind) until it answers a connect. */
async function waitForSocket(path: string, child: ChildProcess, logFile: string, what: string, stale = false): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (stale ? await answers(path) : existsSync(path)) return;
    if (child.exitCode !== null) throw new Error(`${what} exited (${child.exitCode}): ${readFileSync(logFile, "utf8")}`);
    await sleep(50);
  }
  throw new Error(`${what} did not create ${path}: ${readFileSync(logFile, "utf8")}`);
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path);
    c.once("connect", () => { c.destroy(); resolve(true); });
    c.once("error", () => { resolve(false); });
  });
}

/** Runs argv with `stdin` written to it and returns its exit code and output (a CLI run, as a user would). */
export function runCollecting(cmd: readonly string[], o: { env: Record<string, string>; timeoutMs: number; stdin?: string; cwd?: string }): Promise<CliResult> {
  return new Promise((resolveCli) => {
    const child = spawn(cmd[0] ?? "", cmd.slice(1), { env: o.env, stdio: ["pipe", "pipe", "pipe"], timeout: o.timeoutMs, ...(o.cwd !== undefined ? { cwd: o.cwd } : {}) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString("utf8"); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString("utf8"); });
    // A CLI that exits without reading its input must not turn into an EPIPE crash of the test.
    child.stdin.on("error", () => undefined);
    child.stdin.end(o.stdin ?? "");
    child.on("close", (code) => { resolveCli({ code: code ?? -1, stdout, stderr }); });
  });
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const { user, netns } = opts;
  const base = mkdtempSync("/tmp/bgt-stack-");
  chmodSync(base, 0o755);
  const stateDir = opts.stateDir ?? join(base, "state");
  const runtimeDir = join(base, "run");
  const helperDir = join(base, "helper");
  for (const d of [stateDir, runtimeDir]) {
    mkdirSync(d, { recursive: true, mode: 0o700 });
    chownSync(d, user.uid, user.gid);
  }
  const configFile = join(base, "config.toml");
  // Port 0: several test stacks (and a developer's own bangerd) can run at once without fighting over the DNS port.
  writeFileSync(configFile, ownHostsFile(opts.config ?? `[network]\ndns_listen = "127.0.0.1:0"\n`, base));
  chmodSync(configFile, 0o644);
  const helperSocket = join(helperDir, "helper.sock");
  const env: Record<string, string> = {
    PATH: "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
    HOME: user.home,
    BANGER_STATE_DIR: stateDir,
    BANGER_RUNTIME_DIR: runtimeDir,
    BANGER_CONFIG: configFile,
    BANGER_SOCKET: join(runtimeDir, "bangerd.sock"),
    BANGER_HELPER_SOCKET: helperSocket,
  };
  const helperLogFile = join(base, "helper.log");
  const daemonLogFile = join(base, "daemon.log");
  writeFileSync(helperLogFile, "");
  writeFileSync(daemonLogFile, "");

  const helperArgv = [process.execPath, ...(opts.helperNodeFlags ?? []), BIN.helper, "--owner", String(user.uid), "--owner-gid", String(user.gid), "--state-dir", stateDir, "--config", configFile, "--socket", helperSocket];
  const helperCmd = netns !== undefined ? netns.exec(helperArgv) : helperArgv;
  const { openSync } = await import("node:fs");
  let helper: ChildProcess | undefined;
  const startHelper = async (): Promise<void> => {
    if (helper !== undefined && helper.exitCode === null && helper.signalCode === null) return;
    // A helper that was killed leaves its socket behind; it replaces a stale one itself.
    helper = spawn(helperCmd[0] ?? "", helperCmd.slice(1), { stdio: ["ignore", openSync(helperLogFile, "a"), openSync(helperLogFile, "a")], env });
    await waitForSocket(helperSocket, helper, helperLogFile, "bangerd-root", existsSync(helperSocket));
  };
  await startHelper();

  let daemon: ChildProcess | undefined;
  const startDaemon = async (mountNs: MountNs | undefined = opts.daemonMountNs): Promise<void> => {
    const asOwner = asUser(user, [process.execPath, ...(opts.daemonNodeFlags ?? []), BIN.bangerd], netns);
    const cmd = mountNs !== undefined ? mountNs.enter(asOwner) : asOwner;
    daemon = spawn(cmd[0] ?? "", cmd.slice(1), { stdio: ["ignore", openSync(daemonLogFile, "a"), openSync(daemonLogFile, "a")], env });
    await waitForSocket(env["BANGER_SOCKET"] ?? "", daemon, daemonLogFile, "bangerd", existsSync(env["BANGER_SOCKET"] ?? ""));
  };
  const stopProc = async (p: ChildProcess | undefined): Promise<void> => {
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => { r(); }));
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(t);
  };
  const killProc = async (p: ChildProcess | undefined): Promise<void> => {
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once("exit", () => { r(); }));
    p.kill("SIGKILL");
    await exited;
  };
  try {
    await startDaemon();
  } catch (e) {
    await stopProc(helper);
    throw e;
  }

  const cliStart = (args: readonly string[], o: CliOptions = {}): RunningCli => {
    const cmd = asUser(user, [process.execPath, BIN.banger, ...args], o.hostNetns === true ? undefined : netns);
    const child = spawn(cmd[0] ?? "", cmd.slice(1), { env, stdio: ["pipe", "pipe", "pipe"], timeout: o.timeoutMs ?? 120_000 });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => { stdout += d.toString("utf8"); });
    child.stderr.on("data", (d: Buffer) => { stderr += d.toString("utf8"); });
    // A CLI that exits without reading its input must not turn into an EPIPE crash of the test.
    child.stdin.on("error", () => undefined);
    child.stdin.end(o.stdin ?? "");
    const result = new Promise<CliResult>((resolveCli) => {
      child.on("close", (code, sig) => { resolveCli({ code: code ?? (sig !== null ? 128 : -1), stdout, stderr }); });
    });
    // The wrappers (setpriv, nsenter) exec, so the child's pid is the CLI's node process by the time it reads a signal.
    return { result, output: () => ({ stdout, stderr }), signal: (sig) => { child.kill(sig); } };
  };
  return {
    base,
    stateDir,
    runtimeDir,
    helperDir,
    env,
    cli: (args, o = {}) => cliStart(args, o).result,
    cliStart,
    pids: () => ({ daemon: daemon?.exitCode === null ? daemon.pid : undefined, helper: helper?.exitCode === null ? helper.pid : undefined }),
    daemonLog: () => readFileSync(daemonLogFile, "utf8"),
    helperLog: () => readFileSync(helperLogFile, "utf8"),
    stopDaemon: () => stopProc(daemon),
    killDaemon: () => killProc(daemon),
    killHelper: () => killProc(helper),
    startHelper,
    startDaemon,
    async stop() {
      await stopProc(daemon);
      await stopProc(helper);
      // A caller-provided state dir lives outside base and is the caller's to remove.
      rmSync(base, { recursive: true, force: true });
    },
  };
}
