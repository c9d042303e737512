import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/*
 * The guest agent channel (docs/guest-agent.md): the helper composes one identity line for the
 * agent in the guest and waits for its ack. The owner names the identity; the helper adds the
 * sequence number, its clock and a fresh seed, so the owner never composes the line itself.
 */

const str = z.string().max(255);

/** What a guest is told to become: shared by the driver (src/vmm) and the daemon. */
export const vmIdentity = z.object({
  /** One DNS label (the VM's name). */
  hostname: str,
  /** The NIC's new MAC, lowercase aa:bb:cc:dd:ee:ff. */
  mac: str,
  ip: str,
  prefix: z.number().int(),
  gateway: str,
  nameservers: z.array(str).max(3),
  /** base64 of the sshd host private key file in the image flavor's format (OpenSSH or dropbear). */
  host_key_b64: z.string().max(16_384),
}).strict();

export type VmIdentity = z.input<typeof vmIdentity>;

export const privVmmSendIdentity = defineMethod(
  "priv.vmm_send_identity",
  vmIdentity.extend({
    pid: z.number().int(),
    vm_id: z.string().max(64),
    kind: z.enum(["qemu", "firecracker"]),
    /** How long to wait for the agent's ack (default 15 s). */
    timeout_ms: z.number().int().optional(),
  }).strict(),
  z.object({ ack_ms: z.number() }),
);
