import { z } from "zod";
import { defineMethod } from "../descriptor.js";

const name = z.string().min(1).max(253);
const egressResult = z.object({ name: z.string(), running: z.boolean(), policy: z.string(), isolate: z.boolean() });

/**
 * Records the VM's egress policy (`all`, `none` or `allow=LIST`) and/or isolation (kept across
 * stop/start) and, on a running VM, applies it at once. Omitted fields keep what the VM has.
 */
export const vmEgressSet = defineMethod("vm.egress_set", z.object({ name, policy: z.string().max(4096).optional(), isolate: z.boolean().optional() }).strict(), egressResult);
export const vmEgressShow = defineMethod("vm.egress_show", z.object({ name }).strict(), egressResult);
