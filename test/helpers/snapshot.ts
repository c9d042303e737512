import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { helperVmFiles } from "../../src/paths/paths.js";
import { parseProcStat } from "../../src/system/proc.js";
import { runText, systemRunner } from "../../src/system/runner.js";
import { isVmmComm } from "../../src/vmm/identity.js";
import type { NetNs } from "./netns.js";

/**
 * What a VM could leave behind on the host, captured before and after a test
 * so teardown can be asserted exactly: links and firewall in the namespace,
 * loop devices, VMM processes, sockets and files under the runtime and state dirs and in the
 * helper's VMM run dirs.
 */
export interface HostSnapshot {
  readonly links: string;
  readonly ruleset: string;
  readonly iptables: string;
  readonly loops: string;
  readonly vmmProcesses: string;
  readonly runtimeFiles: string[];
  readonly stateFiles: string[];
  /** What the helper keeps for running VMMs (pidfile, sockets, launch record): nothing once they are gone. */
  readonly helperVmFiles: string[];
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

/**
 * Live VMM processes inside the network namespace `ns` (a VMM's argv names its files and sockets by
 * descriptor, so no path of the test's identifies it; its namespace does). Zombies are left out: a
 * VMM killed a moment ago is a zombie until its parent (the helper) reaps it, and it holds nothing but
 * a pid. A VMM's own VMM child (the Firecracker double boots its guest with qemu) is part of it.
 */
function liveVmms(ns: NetNs): string {
  const nsIno = statSync(`/run/netns/${ns.name}`).ino;
  const found = new Map<number, { ppid: number; line: string }>();
  for (const pid of readdirSync("/proc").filter((d) => /^[0-9]+$/.test(d)).map(Number)) {
    try {
      if (statSync(`/proc/${pid}/ns/net`).ino !== nsIno || !isVmmComm(readFileSync(`/proc/${pid}/comm`, "utf8"))) continue;
      const st = parseProcStat(readFileSync(`/proc/${pid}/stat`, "utf8"));
      if (st.state === "Z") continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      found.set(pid, { ppid: st.ppid, line: `${pid} ${cmdline}` });
    } catch {
      // exited while we looked
    }
  }
  return [...found.values()].filter((p) => !found.has(p.ppid)).map((p) => p.line).join("\n");
}

/** VMMs are those inside `ns`, so other VMs on the host do not count. */
export async function snapshotHost(ns: NetNs, dirs: { runtimeDir: string; stateDir: string; helperDir: string }): Promise<HostSnapshot> {
  // Index and link-layer details vary run to run; so does carrier: a bridge whose last port just left
  // reports NO-CARRIER and state DOWN a moment later. Which links exist, and their admin flags, is what
  // a leak changes.
  const links = (await ns.run(["ip", "-o", "link", "show"])).split("\n")
    .map((l) => l.replace(/^\d+:\s*/, "").replace(/\s+link\/.*$/, "").replace(/NO-CARRIER,|,LOWER_UP/g, "").replace(/ state \S+/, ""))
    .sort().join("\n");
  return {
    links,
    ruleset: await ns.run(["nft", "list", "ruleset"]).catch(() => ""),
    iptables: (await ns.run(["iptables-save"]).catch(() => "")).split("\n").filter((l) => !l.startsWith("#")).join("\n"),
    loops: await runText(systemRunner, ["losetup", "-a"]),
    vmmProcesses: liveVmms(ns),
    runtimeFiles: listFiles(dirs.runtimeDir, () => false),
    // The database, installed keys, images, the cached vmm probe and the (emptied) snapshots dir legitimately persist.
    stateFiles: listFiles(dirs.stateDir, (rel) => /^(banger\.db.*|images(\/.*)?|ssh(\/.*)?|cache(\/.*)?|snapshots|vmm-probe\.json|logs(\/.*)?)$/.test(rel)),
    helperVmFiles: listFiles(helperVmFiles.vmsDir(dirs.helperDir), () => false),
  };
}
