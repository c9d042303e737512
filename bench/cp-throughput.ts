import { closeSync, mkdtempSync, openSync, chownSync, rmSync, statSync } from "node:fs";
import { spawn } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CleanupStack } from "../src/daemon/vm/steps.js";
import { sshArgv } from "../src/system/ssh.js";
import { createNetNs, type NetNs } from "../test/helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../test/helpers/requirements.js";
import { startStack, type Stack } from "../test/helpers/stack.js";
import { tinyStackConfig } from "../test/helpers/tiny-stack.js";
import { ensureTestUser, type TestUser } from "../test/helpers/users.js";
import { info, median, note, round, timed, type BenchResult } from "./stats.js";

const BIG_MIB = 200;
/** Alternating (cp, ssh+cat) pairs; the ratio is the median of the per-pair ratios, so drift in the machine's load cancels. */
const PAIRS = 7;

export function cpBenchSkip(): string | false {
  return requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "ssh", "tar"));
}


export async function ok(stack: Stack, args: string[]): Promise<string> {
  const r = await stack.cli(args, { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`banger ${args.join(" ")} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}

/** argv as the test user in the stack's namespace, stdout into `outFile`; rejects on a non-zero exit. */
export function runAs(ns: NetNs, user: TestUser, env: Record<string, string>, argv: readonly string[], outFile: string): Promise<void> {
  const cmd = ns.exec(["setpriv", `--reuid=${user.uid}`, `--regid=${user.gid}`, "--clear-groups", "--", ...argv]);
  const out = openSync(outFile, "w");
  return new Promise((res, rej) => {
    const child = spawn(cmd[0] ?? "", cmd.slice(1), { env, stdio: ["ignore", out, "pipe"] });
    let err = "";
    child.stderr?.on("data", (d: Buffer) => { err += d.toString("utf8"); });
    child.on("close", (code) => {
      closeSync(out);
      if (code === 0) res();
      else rej(new Error(`${argv.join(" ")} exited ${code}: ${err}`));
    });
  });
}

/**
 * `vm cp` of a 200 MiB file out of a tiny guest ÷ `ssh … cat` of the same
 * file with the same key and known_hosts, both as the owner in the same
 * namespace: the tar framing and the extract-and-rename must cost ≤ 10%.
 */
export async function benchCp(): Promise<Record<string, BenchResult>> {
  const cleanup = new CleanupStack();
  try {
    const user = await ensureTestUser();
    const ns = await createNetNs("bgb-cp");
    cleanup.push("netns", () => ns.destroy());
    const stack = await startStack({ user, netns: ns, config: tinyStackConfig("qemu") });
    cleanup.push("stack", async () => {
      await stack.cli(["vm", "rm", "--force", "cpbench"]).catch(() => undefined);
      await stack.stop();
    });
    const work = mkdtempSync(join(tmpdir(), "banger-cpbench-"));
    chownSync(work, user.uid, user.gid);
    cleanup.push("work dir", () => { rmSync(work, { recursive: true, force: true }); return Promise.resolve(); });
    await ok(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
    await ok(stack, ["vm", "create", "--image", "tiny", "--name", "cpbench"]);
    await ok(stack, ["vm", "exec", "cpbench", "--", "sh", "-c", `dd if=/dev/urandom of=/root/big.bin bs=1048576 count=${BIG_MIB} 2>/dev/null && sync`]);
    const vm = JSON.parse(await ok(stack, ["vm", "show", "cpbench", "--json"])) as { ip: string; ssh: { key_path: string; known_hosts_path: string; user: string } };
    const ssh = sshArgv({ keyPath: vm.ssh.key_path, knownHostsPath: vm.ssh.known_hosts_path, host: vm.ip, user: vm.ssh.user }, { tty: false, command: ["cat /root/big.bin"] });
    const cpMs: number[] = [];
    const sshMs: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const dst = join(work, `cp-${i}.bin`);
      const c = await timed(() => ok(stack, ["vm", "cp", "cpbench:/root/big.bin", dst]));
      const s = await timed(() => runAs(ns, user, stack.env, ssh, join(work, `ssh-${i}.bin`)));
      if (statSync(dst).size !== BIG_MIB << 20 || statSync(join(work, `ssh-${i}.bin`)).size !== BIG_MIB << 20) throw new Error("a copy came out short");
      rmSync(dst);
      rmSync(join(work, `ssh-${i}.bin`));
      cpMs.push(c);
      sshMs.push(s);
      ratios.push(s / c);
      note(`cp pair ${i + 1}/${PAIRS}: vm cp ${Math.round(c)} ms, ssh+cat ${Math.round(s)} ms`);
    }
    return {
      cp_throughput_ratio: { value: round(median(ratios)), unit: "ratio (vm cp MiB/s ÷ ssh+cat MiB/s; higher is better)", target: 0.9, better: "higher" },
      cp_200mib_ms: info(Math.round(median(cpMs)), "ms"),
      ssh_cat_200mib_ms: info(Math.round(median(sshMs)), "ms"),
    };
  } finally {
    await cleanup.run();
  }
}
