import { readdir } from "node:fs/promises";
import { state } from "../../paths/paths.js";
import type { VmRecord } from "../../state/vms.js";
import type { NatGuest } from "./deps.js";
import type { LifecycleEnv } from "./lifecycle-env.js";
import { errorMessage } from "./steps.js";

/** One thing banger has on the host that no VM claims, and what start-up did about it. */
export interface Orphan {
  readonly kind: "vmm" | "tap" | "nat" | "ports" | "egress" | "vm-dir";
  /** `pid N (VM id)`, a tap name, a guest address or a path. */
  readonly what: string;
  /** `left`: removing it failed or was refused (see detail); `kept`: data, never removed unasked. */
  readonly action: "killed" | "deleted" | "removed" | "kept" | "left";
  readonly detail?: string;
}

export interface OrphanSweep {
  readonly orphans: Orphan[];
  /** Sources that could not be looked at (the root helper down): their orphans are not known. */
  readonly unchecked: string[];
}

const VM_ID_RE = /^[0-9a-f]{32}$/;

/**
 * Daemon start-up, once every VM record is settled: what banger has on the host that no VM claims
 * is reported and removed. A VMM carrying a banger VM id that no record has (whatever its state:
 * a record, even a stale one, means the VMM is never killed for it); a tap of this install, or a
 * NAT rule for a guest address, that no VM holds while not stopped (a stopped VM has neither; the
 * pool taps the config keeps are not orphans). A VM dir with no record is reported but kept: its
 * work disk may hold the only copy of someone's data. Collect-and-continue: each orphan is judged
 * on its own, and one that cannot be removed is reported as left, with why.
 */
export async function sweepOrphans(env: LifecycleEnv, opId: string): Promise<OrphanSweep> {
  const vms = env.vms.list();
  const orphans: Orphan[] = [];
  const unchecked: string[] = [];
  const found = (o: Orphan): void => {
    orphans.push(o);
    env.logger.warn("orphan found at start-up", { op_id: opId, kind: o.kind, what: o.what, action: o.action, ...(o.detail !== undefined ? { detail: o.detail } : {}) });
  };
  /** Reports `o` once `act` removed it, or as left (with why) when it failed. */
  const attempt = async (o: Omit<Orphan, "detail">, act: () => Promise<void>): Promise<void> => {
    try {
      await act();
      found(o);
    } catch (e) {
      found({ ...o, action: "left", detail: errorMessage(e) });
    }
  };

  const ids = new Set(vms.map((v) => v.id));
  for (const vmm of await env.deps.vmm.listAll()) {
    if (ids.has(vmm.vmId)) continue;
    await attempt({ kind: "vmm", what: `pid ${vmm.pid} (VM ${vmm.vmId})`, action: "killed" }, () => env.deps.vmm.killOrphan(vmm, opId));
  }

  const live = vms.filter((v) => v.state !== "stopped");
  await sweepNetwork(env, live, opId, attempt).catch((e: unknown) => { unchecked.push(`host network (taps, NAT): ${errorMessage(e)}`); });
  await sweepGuestRules(env, live, opId, attempt).catch((e: unknown) => { unchecked.push(`published ports and egress rules: ${errorMessage(e)}`); });

  for (const dir of await vmDirs(env.stateDir)) {
    if (!ids.has(dir)) found({ kind: "vm-dir", what: state.vmDir(env.stateDir, dir), action: "kept", detail: "no VM record claims it; its disks may hold data: remove the directory once it is not needed" });
  }
  return { orphans, unchecked };
}

async function sweepNetwork(env: LifecycleEnv, live: readonly VmRecord[], opId: string, attempt: (o: Omit<Orphan, "detail">, act: () => Promise<void>) => Promise<void>): Promise<void> {
  const { network } = env.deps;
  const view = await network.hostView(opId);
  const taps = new Set(live.map((v) => v.handles.tap));
  const ips = new Set(live.map((v) => v.handles.ip));
  const natOrphans = view.natGuests.filter((g) => !ips.has(g.ip));
  const natOf = (g: NatGuest): Omit<Orphan, "detail"> => ({ kind: "nat", what: `${g.ip} (${g.tap})`, action: "removed" });
  if (view.natInstalled && natOrphans.length === view.natGuests.length) {
    // No VM needs banger's NAT at all: remove it whole, which also takes a table left empty and
    // another backend's leftovers, and turns ip_forward back off if banger turned it on.
    const all = natOrphans.length > 0 ? natOrphans.map(natOf) : [{ kind: "nat" as const, what: "banger's NAT table (no guest in it)", action: "removed" as const }];
    const removal = network.removeAllNat(opId);
    for (const o of all) await attempt(o, () => removal);
  } else {
    for (const g of natOrphans) await attempt(natOf(g), () => network.removeNatGuest(g, opId));
  }
  for (const tap of view.taps) {
    if (!taps.has(tap)) await attempt({ kind: "tap", what: tap, action: "deleted" }, () => network.deleteTap(tap, opId));
  }
}

/**
 * Published ports and egress registrations are keyed by guest address: one that no running VM holds
 * is a VM that went away while the daemon was down (or a crash between steps). Removing them needs
 * no record: an empty port list and an egress removal are what stop does.
 */
async function sweepGuestRules(env: LifecycleEnv, live: readonly VmRecord[], opId: string, attempt: (o: Omit<Orphan, "detail">, act: () => Promise<void>) => Promise<void>): Promise<void> {
  const ips = new Set(live.map((v) => v.handles.ip));
  for (const g of await env.deps.ports.published(opId)) {
    if (!ips.has(g.ip)) await attempt({ kind: "ports", what: `${g.ip} (${g.tap})`, action: "removed" }, () => env.deps.ports.publish(g, [], opId));
  }
  for (const g of await env.deps.egress.registered(opId)) {
    if (!ips.has(g.ip)) await attempt({ kind: "egress", what: `${g.ip} (${g.tap})`, action: "removed" }, () => env.deps.egress.clear("", g, opId));
  }
}

async function vmDirs(stateDir: string): Promise<string[]> {
  try {
    return (await readdir(state.vmsDir(stateDir))).filter((d) => VM_ID_RE.test(d));
  } catch {
    return [];
  }
}
