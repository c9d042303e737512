import { mkdir } from "node:fs/promises";
import { StorageService } from "../src/daemon/storage/service.js";
import { systemRunner } from "../src/system/runner.js";
import { createXfsLoop, makeExt4Image } from "../test/helpers/xfs-loop.js";
import { info, median, timed, type BenchResult } from "./stats.js";

export type { BenchResult };

/**
 * Root-disk clone cost against image size, side by side in one run, with the
 * strategy `auto` picks on a reflink-capable xfs made on a loop device.
 * Images are real ext4 filesystems with written inode tables and a payload
 * proportional to their size (16 MiB in 256 MiB, 256 MiB in 4 GiB), so a
 * strategy that copies data would show a ratio near 16. Needs root (loop + mount).
 * 101 rounds: a clone takes ~0.3 ms, and the ratio of medians of 31 moved by up to 9% between runs,
 * most of the 10% margin; the extra rounds cost ~0.1 s.
 */
export async function benchDisks(rounds = 101): Promise<Record<string, BenchResult>> {
  if (process.getuid?.() !== 0) throw new Error("benchDisks needs root (it makes an xfs filesystem on a loop device)");
  const fs = await createXfsLoop("bgt-disk-bench", 8);
  try {
    const stateDir = `${fs.mnt}/state`;
    await mkdir(`${stateDir}/images/small`, { recursive: true });
    await mkdir(`${stateDir}/images/big`, { recursive: true });
    const vmDir = `${stateDir}/vms/00000000000000000000000000000000`;
    await mkdir(vmDir, { recursive: true });
    const small = `${stateDir}/images/small/rootfs.ext4`;
    const big = `${stateDir}/images/big/rootfs.ext4`;
    await makeExt4Image(small, 256, 16);
    await makeExt4Image(big, 4096, 256);
    await systemRunner.run(["sync"]);

    const svc = new StorageService({ stateDir, configured: "auto", runner: systemRunner });
    const choice = await svc.choice("op-bench01");
    if (choice.strategy !== "reflink") throw new Error(`auto chose ${choice.strategy} on xfs: ${choice.reason}`);
    const strategy = await svc.strategy("op-bench01");
    const times = { small: [] as number[], big: [] as number[] };
    for (let i = 0; i <= rounds; i++) {
      // Alternating order, one warm-up round dropped: both sizes see the same conditions.
      for (const which of i % 2 === 0 ? (["small", "big"] as const) : (["big", "small"] as const)) {
        let handles: Awaited<ReturnType<typeof strategy.clone>> | undefined;
        const ms = await timed(async () => {
          handles = await strategy.clone(which === "small" ? small : big, vmDir, { vmId: "00000000000000000000000000000000", opId: "op-bench01" });
        });
        if (i > 0) times[which].push(ms);
        if (handles !== undefined) await strategy.release(handles, "op-bench01");
      }
    }
    const workMs: number[] = [];
    for (let i = 0; i < 3; i++) {
      workMs.push(await timed(() => svc.createWorkDisk(vmDir, 8, { files: [{ path: "/.ssh/authorized_keys", data: "ssh-ed25519 AAAAbench bench\n", mode: 0o600 }], dirs: [{ path: "/.ssh", mode: 0o700 }] })));
      await svc.releaseVm(vmDir, undefined, "op-bench01");
    }
    // The copy made ahead for the next create must be done before the filesystem goes away.
    await svc.idle();
    const s = median(times.small);
    const b = median(times.big);
    return {
      clone_4g_vs_256m_ratio: { value: Number((b / s).toFixed(3)), unit: "ratio", target: 1.1 },
      clone_4g_ms: info(Number(b.toFixed(3)), "ms"),
      work_disk_8g_create_ms: info(Number(median(workMs).toFixed(1)), "ms (8 GiB work disk with authorized_keys: median of 3 creates: the first builds the template and clones it, the others take the clone made ahead)"),
    };
  } finally {
    await fs.destroy();
  }
}
