import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/*
 * Published ports: host address:port forwarded by the kernel (DNAT in banger's own nft table) to a
 * guest's port. Fields are loosely typed here; the helper checks each with src/roothelper/validate.ts.
 */

const field = z.string().max(256);
export const portProto = z.enum(["tcp", "udp"]);

export const portSpecSchema = z.object({ host_ip: field, host_port: z.number().int(), guest_port: z.number().int(), proto: portProto }).strict();
export type PortSpecWire = z.output<typeof portSpecSchema>;

const publishedSchema = z.object({ host_ip: z.string(), host_port: z.number().int(), guest_ip: z.string(), guest_port: z.number().int(), proto: portProto, tap: z.string() });

/**
 * Replaces everything published to `guest_ip` with `ports` (an empty list unpublishes it), so one call
 * both applies a VM's records after a start or a daemon restart and undoes them on stop. The guest must
 * be the owner VM's: its tap on banger's bridge (and, with NAT on, the helper's own NAT record of ip→tap).
 */
export const privSetPorts = defineMethod(
  "priv.set_ports",
  z.object({ guest_ip: field, tap: field, ports: z.array(portSpecSchema).max(64) }).strict(),
  z.object({ backend: z.literal("nftables"), ports: z.array(publishedSchema) }),
);

/** Everything published (daemon start-up compares it with its records and drops what no running VM claims). */
export const privListPorts = defineMethod("priv.list_ports", z.object({}).strict(), z.object({ ports: z.array(publishedSchema) }));
