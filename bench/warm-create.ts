import { createNetNs } from "../test/helpers/netns.js";
import { startStack, type Stack } from "../test/helpers/stack.js";
import { ensureTestUser } from "../test/helpers/users.js";
import { info, median, note, round, timed, type BenchResult } from "./stats.js";
import { benchConfig, ok } from "./vm-create.js";

/**
 * `vm create --image tiny` to ssh-ready from the image's warm template, against the same with
 * `--cold`, in alternating pairs on one stack (the same machine state for both sides); then forks
 * of a running VM to the fork's ssh-ready. Each VM is removed before the next is made, so no
 * side runs beside a booting guest of the other.
 */
export async function benchWarmCreate(pairs = 15, forks = 7): Promise<Record<string, BenchResult>> {
  const user = await ensureTestUser();
  const ns = await createNetNs("bgt-bwarm");
  const made = new Set<string>();
  let stack: Stack | undefined;
  try {
    stack = await startStack({ user, netns: ns, config: benchConfig("bgbench1", "172.16.94") });
    const s = stack;
    const create = (name: string, cold: boolean): Promise<number> => {
      made.add(name);
      // Started as a user's create would be: the harness's namespace entry is not banger's.
      return timed(() => ok(s, ["vm", "create", "--image", "tiny", "--name", name, ...(cold ? ["--cold"] : [])], { hostNetns: true }));
    };
    const remove = async (name: string): Promise<void> => {
      await ok(s, ["vm", "rm", "--force", name]);
      made.delete(name);
    };
    note("building the tiny image and warming it");
    await ok(s, ["image", "build", "--name", "tiny", "--from", "busybox"]);
    const warmMs = await timed(() => ok(s, ["image", "warm", "tiny"]));
    // A first create of each kind warms caches (page cache of the template, spares) outside the pairs.
    for (const cold of [true, false]) {
      await create(`bw-warmup-${String(cold)}`, cold);
      await remove(`bw-warmup-${String(cold)}`);
    }
    const warm: number[] = [];
    const cold: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < pairs; i++) {
      const one = async (isCold: boolean): Promise<number> => {
        const name = `bw-${isCold ? "c" : "w"}${i}`;
        const ms = await create(name, isCold);
        await remove(name);
        return ms;
      };
      // Alternate which side goes first so machine noise hits both alike.
      let w: number;
      let c: number;
      if (i % 2 === 0) {
        w = await one(false);
        c = await one(true);
      } else {
        c = await one(true);
        w = await one(false);
      }
      note(`pair ${i}: warm create ${w.toFixed(0)} ms, cold create ${c.toFixed(0)} ms`);
      warm.push(w);
      cold.push(c);
      ratios.push(w / c);
    }
    note(`${forks} forks of a running VM`);
    await create("bw-src", true);
    const forkMs: number[] = [];
    for (let i = 0; i < forks; i++) {
      const name = `bw-f${i}`;
      made.add(name);
      forkMs.push(await timed(() => ok(s, ["vm", "fork", "bw-src", "--name", name], { hostNetns: true })));
      note(`fork ${i}: ${forkMs.at(-1)?.toFixed(0) ?? "?"} ms`);
      await remove(name);
    }
    await remove("bw-src");
    await ok(s, ["snapshot", "rm", "template.tiny"]);
    return {
      warm_create_vs_cold_ratio: { value: round(median(ratios)), unit: `ratio (vm create --image tiny -> ssh-ready from the warm template / the same with --cold, median of ${pairs} alternating pairs, TCG)`, target: 0.25 },
      warm_create_ms: info(round(median(warm), 0), "ms (wall, vm create --image tiny from its warm template to ssh-ready, TCG; the moonshot is under 1000)"),
      cold_create_ms: info(round(median(cold), 0), "ms (wall, vm create --image tiny --cold to ssh-ready, TCG)"),
      fork_to_ready_ms: info(round(median(forkMs), 0), `ms (wall, vm fork of a running tiny VM to the fork's ssh-ready, median of ${forks}, TCG)`),
      image_warm_ms: info(round(warmMs, 0), "ms (wall, image warm tiny: one cold boot plus the snapshot)"),
    };
  } finally {
    const errors: unknown[] = [];
    if (stack !== undefined) {
      if (made.size > 0) await stack.cli(["vm", "rm", "--force", ...made], { timeoutMs: 120_000 }).catch((e: unknown) => errors.push(e));
      await stack.stop().catch((e: unknown) => errors.push(e));
    }
    await ns.destroy().catch((e: unknown) => errors.push(e));
    if (errors.length > 0) note(`cleanup problems: ${errors.map(String).join("; ")}`);
  }
}
