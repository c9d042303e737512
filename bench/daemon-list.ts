import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { allocateLease } from "../src/daemon/network/lease.js";
import { state } from "../src/paths/paths.js";
import { openDatabase } from "../src/state/database.js";
import { ImageRepository } from "../src/state/images.js";
import { VmRepository } from "../src/state/vms.js";
import { BIN } from "../test/helpers/stack.js";
import { ensureTestUser, type TestUser } from "../test/helpers/users.js";
import { info, median, note, round, type BenchResult } from "./stats.js";

const CIDR = "172.16.91.0/24";

/**
 * Fills a fresh state dir with `count` stopped VMs holding leases, straight
 * through the state repositories: no helper, VMM or disk is involved, so the
 * daemon serves them as records only (what `vm list` reads).
 */
export function seedVms(stateDir: string, count: number): void {
  const db = openDatabase(state.database(stateDir));
  try {
    const vms = new VmRepository(db);
    // VMs reference their image; a record is enough (list never opens its files).
    const imgDir = join(stateDir, "images", "tiny");
    new ImageRepository(db).upsert({ name: "tiny", source: "busybox", flavor: "busybox", kernelPath: join(imgDir, "vmlinuz"), vmlinuxPath: null, initrdPath: null, rootfsPath: join(imgDir, "rootfs.ext4"), kernelVersion: null, sizeBytes: 0, createdAt: new Date().toISOString() });
    for (let i = 0; i < count; i++) {
      const id = randomBytes(16).toString("hex");
      vms.insert({ id, name: `bench-${i}`, image: "tiny", vcpus: 1, memoryMib: 256, diskGib: 1, vmm: "qemu" });
      const lease = allocateLease(db, id, { cidr: CIDR });
      vms.updateHandles(id, { ip: lease.ip, mac: lease.mac, tap: lease.tap, cid: lease.cid });
      vms.setState(id, "stopped");
    }
  } finally {
    db.close();
  }
}

interface Daemon {
  readonly pid: number;
  /** argv prefix that runs a command as the daemon's owner (setpriv when the bench runs as root). */
  asOwner(argv: readonly string[]): string[];
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** A bangerd with `vmCount` seeded VMs, run as the owner (the test user when root, as in production). */
async function startSeededDaemon(vmCount: number): Promise<Daemon> {
  const user: TestUser | undefined = process.getuid?.() === 0 ? await ensureTestUser() : undefined;
  const base = mkdtempSync("/tmp/bgt-bench-list-");
  let child: ChildProcess | undefined;
  try {
    chmodSync(base, 0o755);
    const stateDir = join(base, "state");
    const runtimeDir = join(base, "run");
    mkdirSync(stateDir, { mode: 0o700 });
    mkdirSync(runtimeDir, { mode: 0o700 });
    seedVms(stateDir, vmCount);
    const configFile = join(base, "config.toml");
    // vmm.kind/accel fixed so the daemon does not probe KVM through a root helper that is not running here.
    writeFileSync(configFile, `[network]\ncidr = "${CIDR}"\ndns_listen = "127.0.0.1:0"\n[vmm]\nkind = "qemu"\naccel = "tcg"\n`);
    chmodSync(configFile, 0o644);
    if (user !== undefined) {
      for (const p of [stateDir, runtimeDir, ...["", "-wal", "-shm"].map((s) => `${state.database(stateDir)}${s}`).filter((p) => existsSync(p))]) chownSync(p, user.uid, user.gid);
    }
    const env: Record<string, string> = {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: user?.home ?? process.env["HOME"] ?? "/tmp",
      BANGER_STATE_DIR: stateDir,
      BANGER_RUNTIME_DIR: runtimeDir,
      BANGER_CONFIG: configFile,
      BANGER_SOCKET: join(runtimeDir, "bangerd.sock"),
      BANGER_HELPER_SOCKET: join(base, "no-helper.sock"),
    };
    const asOwner = (argv: readonly string[]): string[] => (user === undefined ? [...argv] : ["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", ...argv]);
    const log = join(base, "daemon.log");
    const cmd = asOwner([process.execPath, BIN.bangerd]);
    const proc = spawn(cmd[0] ?? "", cmd.slice(1), { env, stdio: ["ignore", openSync(log, "a"), openSync(log, "a")] });
    child = proc;
    for (let i = 0; !existsSync(env["BANGER_SOCKET"] ?? ""); i++) {
      if (proc.exitCode !== null || i > 200) throw new Error(`bangerd did not start: ${readFileSync(log, "utf8")}`);
      await sleep(50);
    }
    return {
      pid: proc.pid ?? -1,
      asOwner,
      env,
      async stop() {
        if (proc.exitCode === null && proc.signalCode === null) {
          const exited = new Promise((r) => proc.once("exit", r));
          proc.kill("SIGTERM");
          const t = setTimeout(() => proc.kill("SIGKILL"), 5_000);
          await exited;
          clearTimeout(t);
        }
        rmSync(base, { recursive: true, force: true });
      },
    };
  } catch (e) {
    child?.kill("SIGKILL");
    rmSync(base, { recursive: true, force: true });
    throw e;
  }
}

/** Wall time of one synchronous child run (spawnSync: no event-loop jitter in the measurement). */
function wallMs(argv: readonly string[], env: Record<string, string>, expectStdout?: (s: string) => void): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(argv[0] ?? "", argv.slice(1), { env, encoding: "utf8", maxBuffer: 64 << 20 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${String(r.status)}: ${r.stderr}`);
  expectStdout?.(r.stdout);
  return ms;
}

/** `banger vm list --json` over 100 seeded VMs vs `node -e 0`, alternating pairs, median of the per-pair ratios. */
const WARMUP_PAIRS = 5;

export async function benchList(pairs = 41, vmCount = 100): Promise<Record<string, BenchResult>> {
  const d = await startSeededDaemon(vmCount);
  try {
    const list = d.asOwner([process.execPath, BIN.banger, "vm", "list", "--json"]);
    const bare = d.asOwner([process.execPath, "-e", "0"]);
    const check = (out: string): void => {
      const n = (JSON.parse(out) as unknown[]).length;
      if (n !== vmCount) throw new Error(`vm list --json returned ${n} VMs, expected ${vmCount}`);
    };
    // Warm-up pairs are dropped: the daemon runs for days, so a user's `vm list` meets a warm daemon
    // (JIT-compiled handlers, page cache); a freshly started one takes a few requests to get there.
    for (let i = 0; i < WARMUP_PAIRS; i++) {
      wallMs(list, d.env, check);
      wallMs(bare, d.env);
    }
    const ratios: number[] = [];
    const listMs: number[] = [];
    const nodeMs: number[] = [];
    for (let i = 0; i < pairs; i++) {
      // Alternate which goes first so a slow moment of the machine hits both sides alike.
      let l: number;
      let n: number;
      if (i % 2 === 0) {
        l = wallMs(list, d.env, check);
        n = wallMs(bare, d.env);
      } else {
        n = wallMs(bare, d.env);
        l = wallMs(list, d.env, check);
      }
      listMs.push(l);
      nodeMs.push(n);
      ratios.push(l / n);
    }
    note(`vm list: ${listMs.map((x) => x.toFixed(0)).join(" ")} ms; node -e 0: ${nodeMs.map((x) => x.toFixed(0)).join(" ")} ms`);
    return {
      list_vs_node_ratio: { value: round(median(ratios)), unit: "ratio", target: 1.5 },
      list_100vms_ms: info(round(median(listMs), 1), "ms (wall, banger vm list --json, 100 VMs)"),
      node_e0_ms: info(round(median(nodeMs), 1), "ms (wall, node -e 0, the reference of list_vs_node_ratio)"),
    };
  } finally {
    await d.stop();
  }
}

function rssKib(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (m === null) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

/** Lets lazily finished work (GC of start-up or request garbage, log flush) settle before sampling a resident set. */
const SETTLE_MS = 500;

/** VmRSS of a node process that has started and does nothing: what every Node program costs on this host. */
async function idleNodeRssKib(argvPrefix: readonly string[]): Promise<number> {
  const cmd = [...argvPrefix, process.execPath, "-e", "setTimeout(() => undefined, 60_000)"];
  const child = spawn(cmd[0] ?? "", cmd.slice(1), { stdio: "ignore" });
  try {
    await sleep(SETTLE_MS);
    return rssKib(child.pid ?? -1);
  } finally {
    child.kill("SIGKILL");
  }
}

/** bangerd's resident set with 50 VM records, after it served one vm.list, against an idle node's beside it. */
export async function benchDaemonRss(vmCount = 50): Promise<Record<string, BenchResult>> {
  const d = await startSeededDaemon(vmCount);
  try {
    const idle = rssKib(d.pid);
    wallMs(d.asOwner([process.execPath, BIN.banger, "vm", "list", "--json"]), d.env, (out) => {
      const n = (JSON.parse(out) as unknown[]).length;
      if (n !== vmCount) throw new Error(`vm list --json returned ${n} VMs, expected ${vmCount}`);
    });
    await sleep(SETTLE_MS);
    const after = rssKib(d.pid);
    // setpriv execs node, so the pid is node's own; run as the owner like the daemon.
    const node = await idleNodeRssKib(d.asOwner([]));
    return {
      daemon_rss_50vms_vs_node_ratio: { value: round(after / node), unit: "ratio: bangerd VmRSS with 50 VM records after one vm.list / VmRSS of an idle node started beside it", target: 1.6 },
      daemon_rss_mib_50vms: info(round(after / 1024, 1), "MiB (bangerd VmRSS after one vm.list)"),
      daemon_rss_mib_startup: info(round(idle / 1024, 1), "MiB (bangerd VmRSS right after start, before any request)"),
      node_idle_rss_mib: info(round(node / 1024, 1), "MiB (VmRSS of an idle node, the reference of daemon_rss_50vms_vs_node_ratio)"),
    };
  } finally {
    await d.stop();
  }
}
