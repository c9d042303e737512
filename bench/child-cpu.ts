import { spawnSync } from "node:child_process";
import { libcLibrary } from "../src/system/libc.js";
import { median } from "./stats.js";

const RUSAGE_CHILDREN = -1;
/** struct rusage on x86-64: two struct timeval (16 bytes each) and 14 longs. */
const RUSAGE_BYTES = 144;

let getrusage: ((who: number, buf: Buffer) => number) | undefined;

/**
 * CPU time (user + system) of every child this process has reaped so far, in ms, from the kernel's
 * own accounting (getrusage RUSAGE_CHILDREN, microseconds; /proc/self/stat's cutime is in 10 ms ticks).
 */
function reapedChildrenCpuMs(): number {
  if (getrusage === undefined) {
    const fn = libcLibrary().func("int getrusage(int who, _Out_ uint8_t *usage)");
    getrusage = (who, buf) => fn(who, buf) as number;
  }
  const buf = Buffer.alloc(RUSAGE_BYTES);
  if (getrusage(RUSAGE_CHILDREN, buf) !== 0) throw new Error("getrusage(RUSAGE_CHILDREN) failed");
  const us = (off: number): number => Number(buf.readBigInt64LE(off)) * 1e6 + Number(buf.readBigInt64LE(off + 8));
  return (us(0) + us(16)) / 1000;
}

/**
 * CPU time of one synchronous child run. spawnSync reaps only its own child, so no other child of this
 * process lands in the difference, and it blocks the event loop, so nothing else is started meanwhile.
 */
export function childCpuMs(argv: readonly string[]): number {
  const before = reapedChildrenCpuMs();
  const r = spawnSync(argv[0] ?? "", argv.slice(1), { stdio: "ignore" });
  const ms = reapedChildrenCpuMs() - before;
  if (r.status !== 0) throw new Error(`${argv.join(" ")} exited ${String(r.status)}${r.error !== undefined ? `: ${r.error.message}` : ""}`);
  return ms;
}

/** The reference every CPU ratio divides by: median CPU time of `runs` runs of `node -e 0`. */
export function nodeStartCpuMs(runs: number): { median: number; samples: number[] } {
  const samples = Array.from({ length: runs }, () => childCpuMs([process.execPath, "-e", "0"]));
  return { median: median(samples), samples };
}
