import { mkdir, mkdtemp, open, rm } from "node:fs/promises";
import { runText, systemRunner } from "../../src/system/runner.js";
import { writeExt4Files } from "../../src/daemon/storage/ext4.js";

/**
 * A reflink-capable xfs filesystem made inside a test: a sparse file in
 * /tmp/<prefix>-*, attached to a loop device and mounted. `destroy()`
 * unmounts, detaches and deletes (collect-and-continue, idempotent), so a
 * failing test never leaves a loop device or mount behind.
 */
export interface XfsLoop {
  readonly dir: string;
  readonly mnt: string;
  readonly loop: string;
  destroy(): Promise<void>;
}

export async function createXfsLoop(prefix: string, sizeGib: number): Promise<XfsLoop> {
  return createLoopFs(prefix, "xfs", sizeGib * 1024);
}

/** The same with ext4 (no reflink: VMs get the copy strategy), and sizes small enough to fill in a test. */
export async function createExt4Loop(prefix: string, sizeMib: number): Promise<XfsLoop> {
  return createLoopFs(prefix, "ext4", sizeMib);
}

async function createLoopFs(prefix: string, fsType: "xfs" | "ext4", sizeMib: number): Promise<XfsLoop> {
  const dir = await mkdtemp(`/tmp/${prefix}-${fsType}-`);
  const img = `${dir}/fs.img`;
  const mnt = `${dir}/mnt`;
  let loop = "";
  let mounted = false;
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    const errors: unknown[] = [];
    if (mounted) {
      // A test that failed half way can leave loop devices (or a dm target over them) on files in
      // this filesystem; they keep it busy. Take them down first, and report them as the failure
      // they are, so the host is clean for the next test either way.
      for (const line of await loopDevices(`${mnt}/`).catch((e: unknown) => { errors.push(e); return []; })) {
        const dev = line.split(" ")[0] ?? "";
        errors.push(new Error(`loop device ${dev} was left on ${line.split(" ")[1] ?? "?"}`));
        await systemRunner.run(["losetup", "--detach", dev]).catch((e: unknown) => errors.push(e));
      }
      try {
        await systemRunner.run(["umount", mnt]);
      } catch (e) {
        errors.push(e);
        // Still busy (an open file somewhere): detach it from the tree now, the kernel frees it when the last user goes.
        await systemRunner.run(["umount", "--lazy", mnt]).catch((e2: unknown) => errors.push(e2));
      }
    }
    if (loop !== "") {
      try {
        await systemRunner.run(["losetup", "--detach", loop]);
      } catch (e) {
        errors.push(e);
      }
    }
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (e) {
      errors.push(e);
    }
    if (errors.length > 0) throw new AggregateError(errors, `cleaning up xfs loop ${dir}`);
  };
  try {
    const fh = await open(img, "wx", 0o600);
    await fh.truncate(sizeMib * 1024 ** 2);
    await fh.close();
    await systemRunner.run(fsType === "xfs" ? ["mkfs.xfs", "-q", "-m", "reflink=1", img] : ["mkfs.ext4", "-q", "-F", "-m", "0", img]);
    loop = await runText(systemRunner, ["losetup", "--find", "--show", img]);
    await mkdir(mnt);
    await systemRunner.run(["mount", "-t", fsType, loop, mnt]);
    mounted = true;
  } catch (e) {
    await destroy().catch(() => undefined);
    throw e;
  }
  return { dir, mnt, loop, destroy };
}

/**
 * A realistic ext4 image of `sizeMib`: inode tables written in full (no lazy
 * init, as an image build would leave them) plus a payload file of
 * `payloadMib` of non-zero data, so the image has real allocated extents
 * spread over the file and a clone cannot cheat by skipping holes.
 */
export async function makeExt4Image(path: string, sizeMib: number, payloadMib: number): Promise<void> {
  const fh = await open(path, "wx", 0o644);
  await fh.truncate(sizeMib * 1024 * 1024);
  await fh.close();
  await systemRunner.run(["mkfs.ext4", "-F", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0,root_owner=0:0", path]);
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 131 + 7) & 0xff;
  const payload = Buffer.concat(Array.from({ length: payloadMib }, () => chunk));
  await writeExt4Files(systemRunner, path, [{ path: "/payload.bin", data: payload, mode: 0o644 }]);
}

/**
 * `losetup -a` as sorted "NAME BACKING-FILE" lines: the before/after
 * fingerprint of attached loop devices. `backingPrefix` keeps only loops
 * backed by files under it, so other suites attaching loops concurrently on
 * a shared machine cannot make the comparison flaky.
 */
export async function loopDevices(backingPrefix?: string): Promise<string[]> {
  const out = await runText(systemRunner, ["losetup", "--all", "--list", "--noheadings", "--output", "NAME,BACK-FILE"]);
  return out
    .split("\n")
    .map((l) => l.trim().replace(/\s+/, " "))
    .filter((l) => l !== "" && (backingPrefix === undefined || (l.split(" ")[1] ?? "").startsWith(backingPrefix)))
    .sort();
}
