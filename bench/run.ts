import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { benchList, benchDaemonRss } from "./daemon-list.js";
import { benchDisks } from "./disks.js";
import { benchOrchestration } from "./orchestration.js";
import { benchPortForward, portForwardBenchSkip } from "./port-forward.js";
import { note, type BenchResult } from "./stats.js";
import { benchCreate, createBenchSkip } from "./vm-create.js";
import { benchWarmCreate } from "./warm-create.js";
import { benchCp, cpBenchSkip } from "./cp-throughput.js";
import { benchExecChannel, execBenchSkip } from "./exec-channel.js";

/**
 * `npm run bench`: every benchmark in one run, one JSON document on stdout
 * (progress goes to stderr) and the same document in bench/results.json.
 * A benchmark that cannot run here (not root, missing tools) or fails is
 * reported on stderr and left out; the rest are still written. Exit 1 if any
 * benchmark failed (skips are not failures).
 */
const RESULTS = resolve(import.meta.dirname, "..", "..", "bench", "results.json");

interface Bench {
  readonly name: string;
  readonly skip: () => string | false;
  readonly run: () => Promise<Record<string, BenchResult>>;
}

const notRoot = (): string | false => (process.getuid?.() === 0 ? false : "needs root (loop devices, network namespaces)");

const BENCHES: readonly Bench[] = [
  // Cheap, quiet-machine benchmarks first; the VM boots load the CPU for minutes afterwards.
  { name: "vm list vs node", skip: () => false, run: () => benchList() },
  { name: "daemon RSS", skip: () => false, run: () => benchDaemonRss() },
  { name: "daemon orchestration (faked subsystems)", skip: () => false, run: () => benchOrchestration() },
  { name: "disk clone", skip: notRoot, run: () => benchDisks() },
  { name: "published port vs direct, bulk TCP", skip: portForwardBenchSkip, run: () => benchPortForward() },
  { name: "vm create vs bare qemu, parallel creates", skip: createBenchSkip, run: () => benchCreate() },
  { name: "warm create vs cold, fork", skip: createBenchSkip, run: () => benchWarmCreate() },
  { name: "vm cp vs ssh + cat", skip: cpBenchSkip, run: () => benchCp() },
  { name: "exec channel: client round trip, vm exec vs ssh", skip: execBenchSkip, run: () => benchExecChannel() },
];

async function main(): Promise<number> {
  const results: Record<string, BenchResult> = {};
  let failed = 0;
  for (const b of BENCHES) {
    const reason = b.skip();
    if (reason !== false) {
      note(`SKIP ${b.name}: ${reason}`);
      continue;
    }
    note(`start ${b.name}`);
    const t0 = Date.now();
    try {
      Object.assign(results, await b.run());
      note(`done ${b.name} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (e) {
      failed++;
      note(`FAILED ${b.name}: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  const doc = `${JSON.stringify(results, null, 2)}\n`;
  writeFileSync(RESULTS, doc);
  process.stdout.write(doc);
  for (const [k, v] of Object.entries(results)) if (v.target !== null && (v.better === "higher" ? v.value < v.target : v.value > v.target)) note(`MISS ${k}: ${v.value} ${v.better === "higher" ? "<" : ">"} target ${v.target} (${v.unit})`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 1;
  },
);
