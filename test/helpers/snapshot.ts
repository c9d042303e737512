import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { runText, systemRunner } from "../../src/system/runner.js";
import type { NetNs } from "./netns.js";

/**
 * What a VM could leave behind on the host, captured before and after a test
 * so teardown can be asserted exactly: links and firewall in the namespace,
 * loop devices, VMM processes, sockets and files under the runtime and state dirs.
 */
export interface HostSnapshot {
  readonly links: string;
  readonly ruleset: string;
  readonly iptables: string;
  readonly loops: string;
  readonly vmmProcesses: string;
  readonly runtimeFiles: string[];
  readonly stateFiles: string[];
}

function listFiles(dir: string, skip: (rel: string) => boolean): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: string[];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const e of entries) {
      const p = join(d, e);
      const rel = relative(dir, p);
      if (skip(rel)) continue;
      out.push(rel);
      if (statSync(p, { throwIfNoEntry: false })?.isDirectory() === true) walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

export async function snapshotHost(ns: NetNs, dirs: { runtimeDir: string; stateDir: string }, vmmPattern: string): Promise<HostSnapshot> {
  const links = (await ns.run(["ip", "-o", "link", "show"])).split("\n").map((l) => l.replace(/^\d+:\s*/, "").replace(/\s+link\/.*$/, "")).sort().join("\n");
  return {
    links,
    ruleset: await ns.run(["nft", "list", "ruleset"]).catch(() => ""),
    iptables: (await ns.run(["iptables-save"]).catch(() => "")).split("\n").filter((l) => !l.startsWith("#")).join("\n"),
    loops: await runText(systemRunner, ["losetup", "-a"]),
    vmmProcesses: await runText(systemRunner, ["pgrep", "-af", vmmPattern], { okExitCodes: [1] }),
    runtimeFiles: listFiles(dirs.runtimeDir, () => false),
    // The database, installed keys, images and the cached vmm probe legitimately persist.
    stateFiles: listFiles(dirs.stateDir, (rel) => /^(banger\.db.*|images(\/.*)?|ssh(\/.*)?|cache(\/.*)?|vmm-probe\.json|logs(\/.*)?)$/.test(rel)),
  };
}
