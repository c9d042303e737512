import { CleanupStack } from "../src/daemon/vm/steps.js";
import { openExec } from "../src/rpc/exec-client.js";
import { unixDial } from "../src/rpc/unix-client.js";
import { sshArgv } from "../src/system/ssh.js";
import { createNetNs } from "../test/helpers/netns.js";
import { startStack } from "../test/helpers/stack.js";
import { tinyStackConfig } from "../test/helpers/tiny-stack.js";
import { ensureTestUser } from "../test/helpers/users.js";
import { cpBenchSkip, ok, runAs } from "./cp-throughput.js";
import { alternating, info, median, note, round, timed, type BenchResult } from "./stats.js";

/** Round trips of the client API; alternating (CLI, ssh) pairs for the ratio, whose median beats load drift. */
const SDK_SAMPLES = 30;
const PAIRS = 31;

export const execBenchSkip = cpBenchSkip;

/**
 * sdk_exec_ms: an `openExec(["true"])` round trip (open, run, exit status) on a running tiny VM
 * over the daemon's pooled connection. exec_vs_ssh_ratio: `banger vm exec NAME -- true` ÷ a plain
 * `ssh -i key … true` with the same key and known_hosts, both started the same way (as the owner,
 * in the stack's namespace), so each pays the same process start and the ratio is what the pooled
 * channel saves over a fresh SSH handshake.
 */
export async function benchExecChannel(): Promise<Record<string, BenchResult>> {
  const cleanup = new CleanupStack();
  try {
    const user = await ensureTestUser();
    const ns = await createNetNs("bgb-ex");
    cleanup.push("netns", () => ns.destroy());
    const stack = await startStack({ user, netns: ns, config: tinyStackConfig("qemu") });
    cleanup.push("stack", async () => {
      await stack.cli(["vm", "rm", "--force", "exbench"]).catch(() => undefined);
      await stack.stop();
    });
    await ok(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
    await ok(stack, ["vm", "create", "--image", "tiny", "--name", "exbench"]);
    const dial = unixDial(stack.env["BANGER_SOCKET"] ?? "");
    const once = async (): Promise<void> => {
      const s = await openExec(dial, { name: "exbench", argv: ["true"], stdin: false });
      s.stdout.resume();
      s.stderr.resume();
      const st = await s.exit;
      if (st.code !== 0) throw new Error(`true exited ${String(st.code ?? st.signal)}`);
    };
    // The first exec opens the pooled connection (a key exchange under TCG); the figure is the steady state.
    await once();
    const sdk: number[] = [];
    for (let i = 0; i < SDK_SAMPLES; i++) sdk.push(await timed(once));
    note(`sdk exec: median ${Math.round(median(sdk))} ms over ${SDK_SAMPLES}`);

    const vm = JSON.parse(await ok(stack, ["vm", "show", "exbench", "--json"])) as { ip: string; ssh: { key_path: string; known_hosts_path: string; user: string } };
    const ssh = sshArgv({ keyPath: vm.ssh.key_path, knownHostsPath: vm.ssh.known_hosts_path, host: vm.ip, user: vm.ssh.user }, { tty: false, command: ["true"] });
    const cliMs: number[] = [];
    const sshMs: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      const cli = (): Promise<number> => timed(() => ok(stack, ["vm", "exec", "exbench", "--", "true"]));
      const plain = (): Promise<number> => timed(() => runAs(ns, user, stack.env, ssh, "/dev/null"));
      const [c, s] = await alternating(i, cli, plain);
      cliMs.push(c);
      sshMs.push(s);
      ratios.push(c / s);
    }
    note(`exec pairs: vm exec median ${Math.round(median(cliMs))} ms, ssh median ${Math.round(median(sshMs))} ms`);
    return {
      sdk_exec_ms: { value: Math.round(median(sdk)), unit: "ms (median openExec([\"true\"]) round trip, tiny VM under TCG)", target: 100 },
      exec_vs_ssh_ratio: { value: round(median(ratios)), unit: "ratio (vm exec -- true ÷ ssh -i key … true; lower is better)", target: 0.5 },
      vm_exec_true_ms: info(Math.round(median(cliMs)), "ms"),
      ssh_true_ms: info(Math.round(median(sshMs)), "ms"),
    };
  } finally {
    await cleanup.run();
  }
}
