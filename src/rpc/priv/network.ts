import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/*
 * Host networking surface of the root helper. Names and snake_case params
 * follow the seed (priv.ensure_bridge, priv.create_tap, ...). Field shapes are
 * only loosely typed here (bounded strings); the helper validates each value
 * with src/roothelper/validate.ts so every refusal names the field.
 */

const field = z.string().max(256);
const empty = z.object({}).strict();

/** `resolver`: whether host lookups of NAME.vm are routed to banger's DNS (systemd-resolved), or why not. */
const bridgeResult = z.object({ bridge: z.string(), cidr: z.string(), bridge_ip: z.string(), created: z.boolean(), resolver: z.object({ applied: z.boolean(), reason: z.string().optional() }) });

/** Bridge name and CIDR come from the helper's own config; a request may only repeat them. */
export const privEnsureBridge = defineMethod("priv.ensure_bridge", z.object({ bridge_name: field.optional(), cidr: field.optional() }).strict(), bridgeResult);

export const privCreateTap = defineMethod("priv.create_tap", z.object({ tap_name: field }).strict(), z.object({ tap: z.string(), owner_uid: z.number().int(), bridge: z.string() }));

export const privDeleteTap = defineMethod("priv.delete_tap", z.object({ tap_name: field }).strict(), z.object({ tap: z.string(), deleted: z.boolean() }));

export const natBackendKind = z.enum(["nftables", "iptables"]);

export const privEnsureNat = defineMethod(
  "priv.ensure_nat",
  z.object({ guest_ip: field, tap: field, enable: z.boolean() }).strict(),
  z.object({ backend: natBackendKind, changed: z.boolean(), ip_forward_enabled_by_banger: z.boolean() }),
);

/** No VM needs NAT: drop banger's NAT table/chains (both backends) and give ip_forward back if banger set it. */
export const privRemoveNatAll = defineMethod("priv.remove_nat_all", empty, z.object({ removed: z.array(natBackendKind) }));

export const natGuestSchema = z.object({ ip: z.string(), tap: z.string() });

/** How the host resolves NAME.vm (network.host_dns with auto decided at helper start), and why not when it cannot. */
export const hostDnsStatus = z.object({ mode: z.enum(["resolved", "hosts", "none"]), reason: z.string().optional() });

/**
 * The full list of this owner's running VMs as `NAME.vm` lines of the managed block in network.hosts_file
 * (replacing whatever the block held). A no-op, `written: false`, unless the host DNS mode is hosts.
 */
export const privSyncHosts = defineMethod(
  "priv.sync_hosts",
  z.object({ entries: z.array(z.object({ name: field, ip: field }).strict()).max(4096) }).strict(),
  z.object({ mode: hostDnsStatus.shape.mode, written: z.boolean(), entries: z.number().int() }),
);

/** What banger currently has on the host network (doctor, tests). */
export const privNetworkStatus = defineMethod(
  "priv.network_status",
  empty,
  z.object({
    bridge: z.string(),
    bridge_exists: z.boolean(),
    host_dns: hostDnsStatus,
    taps: z.array(z.string()),
    nat: z.object({ backend: natBackendKind.nullable(), guests: z.array(natGuestSchema), ip_forward_enabled_by_banger: z.boolean() }),
  }),
);

/**
 * `banger system uninstall` (through the daemon's system.teardown_network): banger's NAT, resolver
 * routing, this install's taps, then the bridge; collect-and-continue, so one failure leaves the rest removed.
 */
export const privTeardownNetwork = defineMethod("priv.teardown_network", empty, z.object({ removed: z.array(z.string()) }));
