import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/*
 * Per-guest egress policy, enforced on the host in banger's own tables (`inet banger_egress`,
 * `bridge banger_egress`). Fields are loosely typed here; the helper checks each with
 * src/roothelper/validate.ts. Domain names never reach the helper: the daemon's DNS turns the
 * answers for allowed names into addresses (priv.learn_egress).
 */

const field = z.string().max(256);

/** `all`: no restriction beyond the defaults every guest gets; `none`: only banger's DNS; `allow`: only `cidrs` and learned addresses. */
export const egressMode = z.enum(["all", "none", "allow"]);

const guestSchema = z.object({ guest_ip: z.string(), tap: z.string(), mode: egressMode, cidrs: z.array(z.string()), isolate: z.boolean(), learned: z.number().int() });

/**
 * Makes the guest's registration exactly this (`remove`: takes it out, with everything learned for
 * it). Registered guests get the defaults (no host services but banger's DNS, no 169.254.0.0/16, no
 * spoofed source address); `mode` other than `all` adds the policy; `isolate` cuts the guest's tap
 * off from every other port of the bridge. `forget_learned` drops the addresses DNS taught it.
 */
export const privSetEgress = defineMethod(
  "priv.set_egress",
  z.object({ guest_ip: field, tap: field, remove: z.boolean(), mode: egressMode, cidrs: z.array(field).max(64), isolate: z.boolean(), forget_learned: z.boolean() }).strict(),
  z.object({ backend: z.literal("nftables"), guests: z.number().int() }),
);

/** Addresses banger's DNS resolved for an allowed name, each allowed to the guest for `ttl_s` seconds. */
export const privLearnEgress = defineMethod(
  "priv.learn_egress",
  z.object({ guest_ip: field, addrs: z.array(z.object({ ip: field, ttl_s: z.number().int() }).strict()).max(64) }).strict(),
  z.object({ learned: z.number().int() }),
);

/** Every registered guest (daemon start-up removes the ones no running VM claims). */
export const privListEgress = defineMethod("priv.list_egress", z.object({}).strict(), z.object({ guests: z.array(guestSchema) }));
