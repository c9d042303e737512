import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/** A published port; `host_ip` defaults to 127.0.0.1 (the CLI says so). The daemon checks every field. */
export const portSchema = z.object({ host_ip: z.string().max(15), host_port: z.number().int(), guest_port: z.number().int(), proto: z.enum(["tcp", "udp"]) }).strict();

const name = z.string().min(1).max(253);
const portsResult = z.object({ name: z.string(), running: z.boolean(), ports: z.array(portSchema) });

/** Records the ports (kept across stop/start) and, on a running VM, publishes them at once. */
export const vmPortAdd = defineMethod("vm.port_add", z.object({ name, ports: z.array(portSchema).min(1).max(64) }).strict(), portsResult);
/** Removes the VM's ports with these host address, port and proto (guest_port is ignored). */
export const vmPortRm = defineMethod("vm.port_rm", z.object({ name, ports: z.array(portSchema).min(1).max(64) }).strict(), portsResult);
export const vmPortList = defineMethod("vm.port_list", z.object({ name }).strict(), portsResult);
