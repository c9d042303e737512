import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, openSync, readFileSync, readlinkSync, realpathSync } from "node:fs";
import { mkdir, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { runText, systemRunner, type CommandResult, type RunOptions } from "../../src/system/runner.js";
import { needsCommands, needsRoot, requires, which } from "./requirements.js";

/**
 * A Debian bookworm machine with systemd as PID 1, for the e2e tests of what only systemd can show
 * (`banger system install` in systemd mode, units, `banger update` under them). The tree is built once
 * with mmdebstrap from the Debian mirror and cached under /var/cache/banger-test/nspawn-<hash>, keyed by
 * its package list and the steps below; each boot is `systemd-nspawn --volatile=overlay`, so the cached
 * tree is never written (every change lands in a tmpfs that dies with the container).
 *
 * What the container gets from the host, read-only: node and npm (Debian bookworm's nodejs is 18,
 * banger needs >= 20), /boot and /lib/modules (the guest kernel, as on the host), /dev/net/tun. It has
 * its own network namespace (--private-network), so banger's bridge, NAT and nft rules are made inside
 * it and the host's network is never touched. /dev/kvm is not passed: guests run under TCG.
 */
export const NSPAWN_CACHE_DIR = "/var/cache/banger-test";

/** The non-root owner the e2e installs banger for. */
export const CONTAINER_OWNER = { name: "bangerowner", uid: 4242 } as const;

const HOST_PACKAGES = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "scripts", "host-packages.txt");

/**
 * The container is a host like the CI machine: what .ci/run installs, plus systemd as init and dbus
 * (systemctl --user and logind want it). Not mmdebstrap (the e2e builds no Debian image) and not
 * the kernel package (the host's /boot is bound in; installing one would build an initramfs), and
 * not systemd-container (the host runs nspawn; nothing nests a container inside).
 */
const NOT_IN_CONTAINER = new Set(["mmdebstrap", "linux-image-cloud-amd64", "systemd-container"]);

export function containerPackages(): string[] {
  const host = readFileSync(HOST_PACKAGES, "utf8").split("\n").map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
  return [...host.filter((p) => !NOT_IN_CONTAINER.has(p)), "systemd", "systemd-sysv", "dbus"].sort();
}

// Run inside the tree by mmdebstrap (constant text, no interpolated input): the owner account, and the
// mount points of the host binds (nspawn can only bind a file over an existing file).
const CUSTOMIZE = [
  `chroot "$1" useradd --create-home --uid ${CONTAINER_OWNER.uid} --user-group --shell /bin/sh ${CONTAINER_OWNER.name}`,
  "mkdir -p \"$1/usr/local/lib/node_modules/npm\" && touch \"$1/usr/local/bin/node\" && ln -s ../lib/node_modules/npm/bin/npm-cli.js \"$1/usr/local/bin/npm\"",
];

const CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export function nspawnSkip(): string | false {
  return requires(needsRoot(), needsCommands("systemd-nspawn", "mmdebstrap", "nsenter", "npm"));
}

/** The cached tree for the current package list, built first if missing (~80 s, measured). */
export async function containerTree(): Promise<string> {
  const packages = containerPackages();
  const key = createHash("sha256").update(JSON.stringify({ suite: "bookworm", packages, customize: CUSTOMIZE })).digest("hex").slice(0, 16);
  const tree = join(NSPAWN_CACHE_DIR, `nspawn-debian-${key}`);
  if (existsSync(join(tree, "usr", "lib", "systemd", "systemd"))) return tree;
  const tmp = `${tree}.tmp-${process.pid}`;
  await mkdir(NSPAWN_CACHE_DIR, { recursive: true });
  await rm(tmp, { recursive: true, force: true });
  try {
    await systemRunner.run([
      "mmdebstrap", "--quiet", "--mode=root", "--variant=minbase", `--include=${packages.join(",")}`,
      ...CUSTOMIZE.map((c) => `--customize-hook=${c}`),
      "bookworm", tmp,
    ], { timeoutMs: 15 * 60_000 });
    await rename(tmp, tree).catch(async (e: unknown) => {
      // Another run finished the same tree first: theirs is as good as ours.
      if (!existsSync(join(tree, "usr", "lib", "systemd", "systemd"))) throw e;
      await rm(tmp, { recursive: true, force: true });
    });
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return tree;
}

export interface ExecOptions extends Pick<RunOptions, "stdin" | "timeoutMs" | "okExitCodes"> {
  /** Run as this container user (runuser -u, with its HOME/USER/PATH); root otherwise. */
  readonly user?: string;
  readonly env?: Readonly<Record<string, string>>;
}

export interface Container {
  /** The container's PID 1 (systemd), as the host sees it. */
  readonly leader: number;
  /** Milliseconds from spawning systemd-nspawn to `systemctl is-system-running` answering. */
  readonly bootMs: number;
  /** argv that runs `argv` inside the container (all its namespaces). */
  exec(argv: readonly string[], o?: ExecOptions): string[];
  run(argv: readonly string[], o?: ExecOptions): Promise<CommandResult>;
  text(argv: readonly string[], o?: ExecOptions): Promise<string>;
  /** Halt it (SIGTERM: systemd powers off), SIGKILL if it has not gone in 20 s. Idempotent. */
  stop(): Promise<void>;
}

export interface BootOptions {
  /** Extra read-only binds, host path → container path (e.g. the packed tarball). */
  readonly bindRo?: readonly (readonly [string, string])[];
  /** The console and nspawn's own messages go here. */
  readonly logFile: string;
}

/** Boot the tree under systemd-nspawn and wait for systemd to finish starting; stop() on every path out. */
export async function bootContainer(tree: string, o: BootOptions): Promise<Container> {
  const node = realpathSync(process.execPath);
  const npmDir = dirname(dirname(realpathSync(which("npm") ?? "npm")));
  const binds: (readonly [string, string])[] = [[node, "/usr/local/bin/node"], [npmDir, "/usr/local/lib/node_modules/npm"], ["/boot", "/boot"], ["/lib/modules", "/lib/modules"], ...(o.bindRo ?? [])];
  const argv = [
    "systemd-nspawn", "--quiet", "--boot", "--private-network", "--register=no", "--keep-unit", "--volatile=overlay",
    "--console=pipe", "-D", tree, "--bind=/dev/net/tun",
    ...binds.map(([from, to]) => `--bind-ro=${from}:${to}`),
  ];
  const started = performance.now();
  const log = openSync(o.logFile, "a");
  const nspawn: ChildProcess = spawn(argv[0] ?? "", argv.slice(1), { stdio: ["ignore", log, log] });
  const exited = new Promise<void>((resolve) => nspawn.once("exit", () => { resolve(); }));
  let leader = 0;
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (nspawn.exitCode === null && nspawn.signalCode === null) {
      nspawn.kill("SIGTERM");
      const gone = await Promise.race([exited.then(() => true), sleep(20_000, undefined, { ref: false }).then(() => false)]);
      if (!gone) {
        // Killing PID 1 of a pid namespace kills everything in it; nspawn then exits.
        if (leader !== 0) try { process.kill(leader, "SIGKILL"); } catch { /* gone */ }
        nspawn.kill("SIGKILL");
        await exited;
      }
    }
  };
  const exec = (args: readonly string[], eo: ExecOptions = {}): string[] => {
    const login = eo.user !== undefined ? { HOME: `/home/${eo.user}`, USER: eo.user, LOGNAME: eo.user } : { HOME: "/root" };
    const env = Object.entries({ ...login, PATH: CONTAINER_PATH, ...eo.env }).map(([k, v]) => `${k}=${v}`);
    const inner = [...(eo.user !== undefined ? ["runuser", "-u", eo.user, "--"] : []), "env", "-i", "-C", "/", ...env, ...args];
    return ["nsenter", "--target", String(leader), "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--", ...inner];
  };
  const runOpts = (eo: ExecOptions): RunOptions => ({ ...(eo.stdin !== undefined ? { stdin: eo.stdin } : {}), ...(eo.okExitCodes !== undefined ? { okExitCodes: eo.okExitCodes } : {}), timeoutMs: eo.timeoutMs ?? 120_000 });
  try {
    leader = await waitForLeader(nspawn, exited, o.logFile);
    // systemctl fails outright ("Failed to connect to bus") until systemd has made its private socket.
    while (!existsSync(`/proc/${leader}/root/run/systemd/private`)) {
      if (nspawn.exitCode !== null || nspawn.signalCode !== null) throw new Error(`systemd-nspawn exited before systemd was up; see ${o.logFile}`);
      await sleep(50);
    }
    await systemRunner.run(exec(["systemctl", "is-system-running", "--wait"]), { timeoutMs: 120_000, okExitCodes: [0] });
    const bootMs = performance.now() - started;
    return {
      leader,
      bootMs,
      exec,
      run: (args, eo = {}) => systemRunner.run(exec(args, eo), runOpts(eo)),
      text: (args, eo = {}) => runText(systemRunner, exec(args, eo), runOpts(eo)),
      stop,
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** nspawn's child is the container's init once it has exec'd systemd (a fresh pid namespace). */
async function waitForLeader(nspawn: ChildProcess, exited: Promise<void>, logFile: string): Promise<number> {
  let gone = false;
  void exited.then(() => { gone = true; });
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`systemd-nspawn exited (code ${String(nspawn.exitCode)}) before the container booted; see ${logFile}`);
    for (const child of childrenOf(nspawn.pid ?? 0)) {
      try {
        if (readFileSync(`/proc/${child}/comm`, "utf8").trim() === "systemd" && readlinkSync(`/proc/${child}/ns/pid`) !== readlinkSync("/proc/self/ns/pid")) return child;
      } catch { /* exited meanwhile */ }
    }
    await sleep(50);
  }
  throw new Error(`the container's systemd did not start within 60 s; see ${logFile}`);
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").split(/\s+/).filter((s) => s !== "").map(Number);
  } catch {
    return [];
  }
}
