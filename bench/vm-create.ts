import { chmodSync, chownSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { runText, systemRunner } from "../src/system/runner.js";
import { createNetNs, type NetNs } from "../test/helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../test/helpers/requirements.js";
import { startStack, type CliOptions, type Stack } from "../test/helpers/stack.js";
import { ensureTestUser, type TestUser } from "../test/helpers/users.js";
import { nodeStartCpuMs } from "./child-cpu.js";
import { createOps, fixedCostBreakdown, type TimedCreate } from "./create-ops.js";
import { cpuMs, processStartedAt } from "./proc.js";
import { alternating, info, median, note, round, timed, type BenchResult } from "./stats.js";

const BRIDGE = "bgbench0";
const BOOT_TIMEOUT_S = 600;
const BARE_BOOT_JS = resolve(import.meta.dirname, "bare-boot.js");
/** Runs of `node -e 0` for the CPU reference: one run's CPU varies by ±10% here, so the median needs a score of them. */
const NODE_RUNS = 21;

/** Why the create benchmarks cannot run here, or false. */
export function createBenchSkip(): string | false {
  return requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "ssh"));
}

/** A stack of tiny TCG VMs on its own bridge and /24 (`prefix`: the first three octets). */
export function benchConfig(bridge: string, prefix: string): string {
  return `[network]
bridge = "${bridge}"
cidr = "${prefix}.0/24"
dns_listen = "127.0.0.1:0"
upstream_dns = ["${prefix}.1"]
[vmm]
kind = "qemu"
accel = "tcg"
boot_timeout_s = ${BOOT_TIMEOUT_S}
[defaults]
memory_mib = 256
vcpus = 1
disk_gib = 1
`;
}

interface VmJson {
  id: string;
  name: string;
  state: string;
  ip: string | null;
  tap: string | null;
  pid: number | null;
  ssh: { key_path: string; known_hosts_path: string };
}

export async function ok(stack: Stack, args: string[], opts: CliOptions = {}): Promise<string> {
  const r = await stack.cli(args, { timeoutMs: BOOT_TIMEOUT_S * 1000, ...opts });
  if (r.code !== 0) throw new Error(`banger ${args.join(" ")} failed (${r.code}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** The bare side: the VM's own qemu argv, disks copied from its prepared ones, a tap on the same bridge. */
interface BareTemplate {
  readonly argv: string[];
  readonly ip: string;
  readonly tap: string;
  readonly rootDisk: string;
  readonly workDisk: string;
  readonly knownHostsPath: string;
}

function optValue(argv: readonly string[], flag: string, prefix: string): string {
  for (let i = 0; i < argv.length - 1; i++) if (argv[i] === flag && argv[i + 1]?.startsWith(prefix) === true) return argv[i + 1] ?? "";
  throw new Error(`qemu argv has no ${flag} ${prefix}...: ${argv.join(" ")}`);
}

function driveFile(argv: readonly string[], id: string): string {
  const m = /(?:^|,)file=([^,]+)/.exec(optValue(argv, "-drive", `id=${id},`));
  if (m?.[1] === undefined) throw new Error(`no file= in the ${id} drive`);
  return m[1];
}

/**
 * Captures a running banger VM's exact qemu argv (/proc/PID/cmdline), its
 * pinned host key, then stops it and keeps copies of
 * its prepared (cloned + injected) disks: every bare boot then runs the same
 * kernel, initrd, cmdline (incl. TCG_KERNEL_ARGS), memory, vcpus, MAC/IP,
 * authorized_keys and host key as banger's boots do.
 */
async function makeBareTemplate(stack: Stack, vm: VmJson, dir: string): Promise<BareTemplate> {
  if (vm.pid === null || vm.ip === null || vm.tap === null) throw new Error(`template VM ${vm.name} has no pid/ip/tap: ${JSON.stringify(vm)}`);
  const pid = vm.pid;
  // The helper hands qemu some files as inherited descriptors (/proc/self/fd/N, against path swaps);
  // a bare command line needs the files they point at.
  const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter((a) => a !== "")
    .map((a) => a.replace(/\/proc\/self\/fd\/(\d+)/g, (_m, fd: string) => readlinkSync(`/proc/${pid}/fd/${fd}`)));
  if (!(argv[0] ?? "").includes("qemu-system")) throw new Error(`pid ${vm.pid} is not qemu: ${argv.join(" ")}`);
  const ip = vm.ip;
  const pinned = readFileSync(vm.ssh.known_hosts_path, "utf8").split("\n").find((l) => (l.split(" ")[0] ?? "").split(",").includes(ip));
  if (pinned === undefined) throw new Error(`no pinned host key for ${ip} in ${vm.ssh.known_hosts_path}`);
  const knownHostsPath = join(dir, "known_hosts");
  writeFileSync(knownHostsPath, `${ip} ${pinned.split(" ").slice(1).join(" ")}\n`, { mode: 0o600 });
  await ok(stack, ["vm", "stop", vm.name]);
  const rootDisk = join(dir, "template-root.ext4");
  const workDisk = join(dir, "template-work.ext4");
  await systemRunner.run(["cp", "--sparse=always", "--reflink=auto", driveFile(argv, "root"), rootDisk]);
  await systemRunner.run(["cp", "--sparse=always", "--reflink=auto", driveFile(argv, "work"), workDisk]);
  return { argv, ip, tap: vm.tap, rootDisk, workDisk, knownHostsPath };
}

/** One bare boot: fresh disk copies and a fresh tap (untimed), then qemu -> ssh-ready (timed, in the netns). */
async function bareBoot(t: BareTemplate, ns: NetNs, user: TestUser, dir: string, run: number): Promise<number> {
  const root = join(dir, `run${run}-root.ext4`);
  const work = join(dir, `run${run}-work.ext4`);
  const consoleLog = join(dir, `run${run}-console.log`);
  const qmp = join(dir, `run${run}-qmp.sock`);
  await systemRunner.run(["cp", "--sparse=always", "--reflink=auto", t.rootDisk, root]);
  await systemRunner.run(["cp", "--sparse=always", "--reflink=auto", t.workDisk, work]);
  writeFileSync(consoleLog, "");
  const agent = join(dir, `run${run}-agent`);
  for (const end of ["in", "out"]) await systemRunner.run(["mkfifo", "-m", "600", `${agent}.${end}`]);
  for (const f of [root, work, consoleLog]) chownSync(f, user.uid, user.gid);
  const argv = t.argv.map((a, i) => {
    const flag = t.argv[i - 1];
    if (flag === "-name") return `banger-bench-bare-${run}`;
    if (flag === "-drive") return a.replace(/(^|,)file=[^,]+/, `$1file=${a.startsWith("id=root,") ? root : work}`);
    // The guest agent's channel gets FIFOs of its own, made below, as the helper makes them for banger's boots.
    if (flag === "-chardev") return a.replace(/(^|,)path=[^,]+/, `$1path=${a.startsWith("pipe,") ? agent : consoleLog}`);
    if (flag === "-qmp") return `unix:${qmp},server=on,wait=off`;
    return a;
  });
  await ns.run(["ip", "link", "del", t.tap]).catch(() => undefined);
  await ns.run(["ip", "tuntap", "add", "dev", t.tap, "mode", "tap", "user", String(user.uid), "group", String(user.gid)]);
  try {
    await ns.run(["ip", "link", "set", t.tap, "master", BRIDGE]);
    await ns.run(["ip", "link", "set", t.tap, "up"]);
    const args = { qemuArgv: argv, ip: t.ip, name: `bare-${run}`, knownHostsPath: t.knownHostsPath, timeoutMs: BOOT_TIMEOUT_S * 1000 };
    let out: string;
    try {
      out = await runText(systemRunner, ns.exec([process.execPath, BARE_BOOT_JS, JSON.stringify(args)]), { timeoutMs: (BOOT_TIMEOUT_S + 30) * 1000 });
    } catch (e) {
      throw new Error(`bare boot ${run} failed: ${e instanceof Error ? e.message : String(e)}; console: ${readFileSync(consoleLog, "utf8").slice(-2000)}`, { cause: e });
    }
    note(`bare ${run}: guest console ${consoleSummary(readFileSync(consoleLog, "utf8"))}`);
    return (JSON.parse(out) as { ms: number }).ms;
  } finally {
    await ns.run(["ip", "link", "del", t.tap]).catch(() => undefined);
    for (const f of [root, work, consoleLog, qmp, `${agent}.in`, `${agent}.out`]) rmSync(f, { force: true });
  }
}

/** Last kernel timestamp and line count of a guest console: tells guest-side boot time apart from host-side overhead. */
function consoleSummary(text: string): string {
  const stamps = [...text.matchAll(/^\[\s*(\d+\.\d+)\]/gm)].map((m) => Number(m[1]));
  return `${text.split("\n").length} lines, last kernel timestamp ${stamps.at(-1) ?? "?"} s`;
}

/**
 * CPU time of some processes sampled every 20 ms, so the CPU of a span can be read back
 * afterwards (between two wall-clock times, interpolated).
 */
class CpuTrace {
  private readonly samples: [number, number][] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly pids: readonly number[]) {
    this.sample();
    this.timer = setInterval(() => { this.sample(); }, 20);
  }

  stop(): void {
    clearInterval(this.timer);
    this.sample();
  }

  total(): number {
    return (this.samples.at(-1)?.[1] ?? 0) - (this.samples[0]?.[1] ?? 0);
  }

  between(from: number, to: number): number {
    return this.at(to) - this.at(from);
  }

  private sample(): void {
    this.samples.push([Date.now(), cpuMs(this.pids)]);
  }

  private at(t: number): number {
    const s = this.samples;
    const i = s.findIndex(([ts]) => ts >= t);
    if (i <= 0) return (i === 0 ? s[0] : s.at(-1))?.[1] ?? 0;
    const [t0, c0] = s[i - 1] ?? [t, 0];
    const [t1, c1] = s[i] ?? [t, 0];
    return t1 === t0 ? c1 : c0 + ((c1 - c0) * (t - t0)) / (t1 - t0);
  }
}

function cpus(): number {
  return availableParallelism();
}

/**
 * 41 alternating pairs: one TCG boot varies by a few hundred ms, several times banger's own ~70 ms, so
 * the median ratio moves by about ±1.5% with 21 pairs against a 5% target; 41 pairs cut that to ~±1%.
 */
export async function benchCreate(pairs = 41, parallel = 8): Promise<Record<string, BenchResult>> {
  const user = await ensureTestUser();
  const ns = await createNetNs("bgt-bench");
  const dir = mkdtempSync("/tmp/bgt-bench-bare-");
  chmodSync(dir, 0o755);
  const created = new Set<string>();
  let stack: Stack | undefined;
  try {
    stack = await startStack({ user, netns: ns, config: benchConfig(BRIDGE, "172.16.92") });
    const s = stack;
    const create = async (name: string): Promise<void> => {
      created.add(name);
      // The timed side starts as a user's create would: the harness's namespace entry is not banger's.
      await ok(s, ["vm", "create", "--image", "tiny", "--name", name], { hostNetns: true });
    };
    const remove = async (...names: string[]): Promise<void> => {
      await ok(s, ["vm", "rm", "--force", ...names]);
      for (const n of names) created.delete(n);
    };
    note("building the tiny image");
    await ok(s, ["image", "build", "--name", "tiny", "--from", "busybox"]);

    note("template VM for the bare boots (also the warm-up create)");
    await create("bench-src");
    const template = await makeBareTemplate(s, JSON.parse(await ok(s, ["vm", "show", "bench-src", "--json"])) as VmJson, dir);

    const bangerMs: number[] = [];
    const bareMs: number[] = [];
    const ratios: number[] = [];
    const diffs: number[] = [];
    const timedCreates: TimedCreate[] = [];
    for (let i = 0; i < pairs; i++) {
      const name = `bench-c${i}`;
      const runBanger = async (): Promise<number> => {
        const cliStart = Date.now();
        const ms = await timed(() => create(name));
        const cliExit = Date.now();
        const vm = JSON.parse(await ok(s, ["vm", "show", name, "--json"])) as VmJson;
        if (vm.pid === null) throw new Error(`${name} is running without a VMM pid`);
        timedCreates.push({ name, cliStart, cliExit, vmmSpawned: processStartedAt(vm.pid) });
        note(`banger ${i}: guest console ${consoleSummary(await ok(s, ["vm", "logs", name]))}`);
        await remove(name);
        return ms;
      };
      const runBare = (): Promise<number> => bareBoot(template, ns, user, dir, i);
      const [b, r] = await alternating(i, runBanger, runBare);
      note(`pair ${i}: banger create ${b.toFixed(0)} ms, bare qemu ${r.toFixed(0)} ms`);
      bangerMs.push(b);
      bareMs.push(r);
      ratios.push(b / r);
      diffs.push(b - r);
    }

    const breakdown = fixedCostBreakdown(s.stateDir, timedCreates);
    note(`one create's fixed cost (medians, ms): ${Object.entries(breakdown).map(([k, v]) => `${k.replace(/^create_/, "").replace(/_ms$/, "")}=${v.value}`).join(" ")}`);

    // The reference for the CPU ratios, measured right beside the parallel creates (half before, half
    // after), so both sides see the same machine in the same state.
    const nodeBefore = nodeStartCpuMs(Math.ceil(NODE_RUNS / 2));
    note(`${parallel} parallel creates`);
    const names = Array.from({ length: parallel }, (_, i) => `bench-p${i}`);
    const pids = s.pids();
    if (pids.daemon === undefined || pids.helper === undefined) throw new Error("bangerd or bangerd-root is not running");
    const controlPlane = [pids.daemon, pids.helper];
    const cpu = new CpuTrace(controlPlane);
    const wallMs = await timed(() => Promise.all(names.map((n) => create(n))));
    cpu.stop();
    const nodeAfter = nodeStartCpuMs(Math.floor(NODE_RUNS / 2));
    const nodeSamples = [...nodeBefore.samples, ...nodeAfter.samples];
    const nodeCpu = median(nodeSamples);
    note(`node -e 0 CPU (ms): ${nodeSamples.map((x) => x.toFixed(1)).join(" ")}`);
    const list = (JSON.parse(await ok(s, ["vm", "list", "--json"])) as VmJson[]).filter((v) => names.includes(v.name));
    if (list.length !== parallel || !list.every((v) => v.state === "running")) throw new Error(`expected ${parallel} running VMs, got ${JSON.stringify(list.map((v) => [v.name, v.state]))}`);
    const ips = new Set(list.map((v) => v.ip));
    const taps = new Set(list.map((v) => v.tap));
    if (ips.size !== parallel || taps.size !== parallel || ips.has(null)) throw new Error(`leases are not distinct: ${JSON.stringify(list.map((v) => [v.name, v.ip, v.tap]))}`);
    const ops = createOps(s.stateDir, names);
    if (ops.size !== parallel) throw new Error(`found ${ops.size} succeeded vm.create operations for ${parallel} VMs`);
    const latency: number[] = [];
    const byStep = new Map<string, number[]>();
    const waits: number[] = [];
    let lastLaunched = 0;
    let firstReady = Infinity;
    for (const op of ops.values()) {
      let wait = 0;
      for (const r of op.steps) {
        const ms = r.elapsed_ms ?? 0;
        const end = Date.parse(r.started_at ?? "") + ms;
        if (r.name === "launch-vmm") lastLaunched = Math.max(lastLaunched, end);
        if (r.name === "wait-ssh") {
          wait = ms;
          firstReady = Math.min(firstReady, end);
        }
        byStep.set(r.name, [...(byStep.get(r.name) ?? []), ms]);
      }
      waits.push(wait);
      // Grouped steps overlap, so a VM's control-plane latency is its operation's wall time minus the guest's boot.
      latency.push(op.wallMs - wait);
    }
    if (!Number.isFinite(lastLaunched + firstReady)) throw new Error("the operations do not say when the VMMs started and the guests answered");
    // While every guest is booting (after the last VMM started, before the first guest answered), all the
    // control plane does is wait for them: that CPU is the price of the boot, not of the creates.
    const bootWindowMs = Math.max(0, firstReady - lastLaunched);
    const bootCpu = bootWindowMs > 0 ? cpu.between(lastLaunched, firstReady) : 0;
    const totalCpu = cpu.total();
    const cpuPerVm = (totalCpu - bootCpu) / parallel;
    const pollRate = bootWindowMs > 0 ? bootCpu / parallel / (bootWindowMs / 1000) : 0;
    const meanWaitS = waits.reduce((a, b) => a + b, 0) / waits.length / 1000;
    note(`per-step medians over ${parallel} parallel creates (ms): ${[...byStep].map(([k, v]) => `${k}=${median(v)}`).join(" ")}`);
    note(`control plane CPU (bangerd + bangerd-root + the tools they ran): ${round(totalCpu / parallel, 1)} ms per VM in all, of which ${round(bootCpu / parallel, 1)} ms in the ${round(bootWindowMs / 1000, 1)} s when every guest was booting (${round(pollRate, 2)} ms per VM per second); per-VM latency outside wait-ssh, under ${parallel}-way contention with booting TCG guests: median ${round(median(latency), 0)} ms`);
    await remove(...names);
    await remove("bench-src");

    const cpuTotalPerVm = totalCpu / parallel;
    return {
      create_vs_bare_ratio: { value: round(median(ratios)), unit: "ratio (banger vm create -> ssh-ready / bare qemu -> ssh-ready, median of alternating pairs)", target: 1.05 },
      create_banger_ms: info(round(median(bangerMs), 0), "ms (wall, banger vm create --image tiny, TCG)"),
      create_bare_qemu_ms: info(round(median(bareMs), 0), "ms (wall, bare qemu argv -> ssh-ready with the pinned key)"),
      create_overhead_ms: info(round(median(diffs), 0), "ms (median per-pair banger minus bare: CLI start, control-plane steps, readiness)"),
      ...breakdown,
      parallel_create_cpu_vs_node_ratio: { value: round(cpuPerVm / nodeCpu, 2), unit: `ratio: control-plane CPU per VM over ${parallel} parallel creates (bangerd + bangerd-root and every tool they ran, not the VMMs; minus the span when every guest was booting) / CPU of one node -e 0 (median of ${NODE_RUNS} beside them)`, target: 1.5 },
      parallel_create_boot_wait_cpu_vs_node_ratio: { value: round(pollRate / nodeCpu, 3), unit: `ratio: control-plane CPU per booting VM per second while all ${parallel} guests were booting (readiness probes, liveness checks, followers' long polls) / CPU of one node -e 0`, target: 0.1 },
      parallel_create_cpu_total_vs_node_ratio: { value: round(cpuTotalPerVm / nodeCpu, 2), unit: `ratio: all control-plane CPU per VM of the ${parallel} parallel creates, boot waits included (mean wait-ssh ${round(meanWaitS, 1)} s) / CPU of one node -e 0; target = 1.5 + 0.1 per second of wait`, target: round(1.5 + 0.1 * meanWaitS, 2) },
      node_e0_cpu_ms: info(round(nodeCpu, 1), `ms (CPU time, user + system, of one node -e 0: median of ${NODE_RUNS} runs beside the parallel creates; the reference of the CPU ratios)`),
      parallel_create_ms_per_vm: info(round(cpuPerVm, 1), "ms of CPU per VM, the numerator of parallel_create_cpu_vs_node_ratio"),
      parallel_create_boot_wait_cpu_ms_per_vm_s: info(round(pollRate, 2), "ms of CPU per booting VM per second, the numerator of parallel_create_boot_wait_cpu_vs_node_ratio"),
      parallel_create_cpu_total_ms_per_vm: info(round(cpuTotalPerVm, 1), "ms of CPU per VM, the numerator of parallel_create_cpu_total_vs_node_ratio"),
      parallel_create_latency_ms: info(round(median(latency), 0), `ms (median per VM: vm.create operation wall time minus wait-ssh, ${parallel} creates at once on ${cpus()} CPUs while earlier guests boot under TCG)`),
      parallel_create_wall_s: info(round(wallMs / 1000, 1), `s (wall, ${parallel} parallel creates until all ssh-ready; max wait-ssh ${round(Math.max(...waits) / 1000, 1)} s)`),
    };
  } finally {
    const errors: unknown[] = [];
    if (stack !== undefined) {
      if (created.size > 0) await stack.cli(["vm", "rm", "--force", ...created], { timeoutMs: 120_000 }).catch((e: unknown) => errors.push(e));
      await stack.stop().catch((e: unknown) => errors.push(e));
    }
    await ns.destroy().catch((e: unknown) => errors.push(e));
    rmSync(dir, { recursive: true, force: true });
    if (errors.length > 0) note(`cleanup problems: ${errors.map(String).join("; ")}`);
  }
}
