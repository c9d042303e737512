import { spawn } from "node:child_process";
import { createSshProbe } from "../src/daemon/vm/ssh-probe.js";

/**
 * Child process of the create benchmark, started INSIDE the bench's network
 * namespace (the guest IP only exists there): boots one guest with a bare
 * qemu argv and measures qemu spawn -> `ssh ... true` answering with the
 * pinned host key, using the very probe banger's wait-ssh step uses, so both
 * sides poll identically. Prints {"ms": N} and kills the guest.
 */
interface BareBootArgs {
  readonly qemuArgv: string[];
  readonly ip: string;
  readonly name: string;
  readonly knownHostsPath: string;
  readonly timeoutMs: number;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? "{}") as BareBootArgs;
  const probe = createSshProbe({ knownHostsPath: args.knownHostsPath });
  const t0 = process.hrtime.bigint();
  const qemu = spawn(args.qemuArgv[0] ?? "", args.qemuArgv.slice(1), { stdio: ["ignore", "ignore", "inherit"] });
  const exited = new Promise<void>((resolve) => qemu.once("exit", () => { resolve(); }));
  const ac = new AbortController();
  const died = exited.then(() => { throw new Error("qemu exited before the guest was ssh-ready"); });
  died.catch(() => undefined);
  try {
    await Promise.race([probe.waitReady({ ip: args.ip, name: args.name }, { timeoutMs: args.timeoutMs, signal: ac.signal }), died]);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    process.stdout.write(`${JSON.stringify({ ms })}\n`);
  } finally {
    ac.abort(new Error("bare boot finished"));
    if (qemu.exitCode === null && qemu.signalCode === null) qemu.kill("SIGKILL");
    await exited;
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bare-boot: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
});
