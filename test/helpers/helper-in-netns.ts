import { spawn, type ChildProcess } from "node:child_process";
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { MethodDescriptor, ParamsOf, ResultOf } from "../../src/rpc/descriptor.js";
import { privPing } from "../../src/rpc/priv/ping.js";
import { callMethod } from "../../src/rpc/unix-client.js";
import type { NetNs } from "./netns.js";

/** dist/src/bin/bangerd-root.js, found relative to this compiled file (dist/test/helpers/). */
const HELPER_BIN = resolve(fileURLToPath(import.meta.url), "../../../src/bin/bangerd-root.js");

export interface NetnsHelper {
  readonly dir: string;
  readonly socket: string;
  call<D extends MethodDescriptor>(d: D, params: ParamsOf<D>): Promise<ResultOf<D>>;
  stop(): Promise<void>;
}

/**
 * Runs the real root helper process inside `ns` (`ip netns exec`), so every
 * bridge/tap/nft/iptables/sysctl change it makes stays in that namespace.
 * The socket lives in a temp dir, reachable from the test's own namespace.
 */
export async function startHelperInNetns(ns: NetNs, owner: { uid: number; gid: number }, configToml: string, opts: { readonly strayFd?: boolean } = {}): Promise<NetnsHelper> {
  const dir = mkdtempSync(join(tmpdir(), "bgt-net-helper-"));
  const socket = join(dir, "h.sock");
  const config = join(dir, "config.toml");
  writeFileSync(config, configToml);
  // The helper opens its managed root at start and refuses to run without it.
  mkdirSync(join(dir, "state"), { mode: 0o700 });
  chownSync(join(dir, "state"), owner.uid, owner.gid);
  const child: ChildProcess = spawn("ip", ["netns", "exec", ns.name, process.execPath, HELPER_BIN, "--owner", String(owner.uid), "--owner-gid", String(owner.gid), "--state-dir", join(dir, "state"), "--config", config, "--socket", socket], {
    // strayFd: fd 9 left open without close-on-exec, as a careless parent might; nothing the helper runs may inherit it.
    stdio: ["ignore", "ignore", "pipe", ...(opts.strayFd === true ? [...Array<"ignore">(6).fill("ignore"), "pipe" as const] : [])],
  });
  let stderr = "";
  child.stderr?.on("data", (c: Buffer) => { stderr += c.toString("utf8"); });
  const exited = new Promise<void>((r) => child.once("exit", () => { r(); }));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      await callMethod(socket, privPing, {}, { timeoutMs: 1000 });
      break;
    } catch (e) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`helper did not come up in ${ns.name}: ${e instanceof Error ? e.message : String(e)}\n${stderr}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { dir, socket, call: (d, params) => callMethod(socket, d, params, { timeoutMs: 30_000 }), stop };
}
