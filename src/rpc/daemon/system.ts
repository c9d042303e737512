import { z } from "zod";
import { defineMethod } from "../descriptor.js";

export const daemonPing = defineMethod("daemon.ping", z.object({}).strict(), z.object({ version: z.string(), pid: z.number().int() }));

/** The document behind `banger system status --json`. Later subsystems add their sections here. */
export const systemInfoResult = z.object({
  daemon: z.object({ version: z.string(), pid: z.number().int(), uid: z.number().int(), socket: z.string() }),
  helper: z.object({
    reachable: z.boolean(),
    socket: z.string(),
    version: z.string().optional(),
    owner_uid: z.number().int().optional(),
    error: z.string().optional(),
  }),
  paths: z.object({ state_dir: z.string(), runtime_dir: z.string(), config: z.string() }),
  owner_uid: z.number().int(),
  vmm: z.object({ kind: z.string(), accel: z.string(), reason: z.string() }).optional(),
  storage: z.object({ clone_strategy: z.string(), reason: z.string(), advice: z.string().optional() }).optional(),
  network: z.object({ bridge: z.string(), cidr: z.string(), bridge_ip: z.string() }).optional(),
  dns: z.object({ address: z.string() }).optional(),
  /**
   * How the host resolves NAME.vm (the helper's choice; `error` when it could not be asked), where
   * guests reach banger's DNS, and one running VM (`probe`) whose name doctor looks up.
   */
  host_dns: z.object({
    mode: z.enum(["resolved", "hosts", "none", "unknown"]),
    reason: z.string().optional(),
    guest_address: z.string().optional(),
    probe: z.object({ name: z.string(), ip: z.string() }).optional(),
  }).optional(),
  /** What the daemon's start-up settled (`done` false while it still runs), and the orphans it found. */
  startup: z.object({
    done: z.boolean(),
    adopted: z.array(z.string()),
    stopped: z.array(z.string()),
    interrupted: z.array(z.string()),
    failed: z.array(z.string()),
    orphans: z.array(z.object({ kind: z.enum(["vmm", "tap", "nat", "ports", "egress", "vm-dir"]), what: z.string(), action: z.enum(["killed", "deleted", "removed", "kept", "left"]), detail: z.string().optional() })),
    unchecked: z.array(z.string()),
    error: z.string().optional(),
  }).optional(),
});
export const systemInfo = defineMethod("system.info", z.object({}).strict(), systemInfoResult);
export type SystemInfo = z.output<typeof systemInfoResult>;

/**
 * `banger system uninstall`: the host network banger set up (NAT, resolver routing, taps, bridge),
 * removed by the helper. Refused while a VM still runs or is changing state: it would lose its network.
 */
export const systemTeardownNetwork = defineMethod("system.teardown_network", z.object({}).strict(), z.object({ removed: z.array(z.string()) }));
