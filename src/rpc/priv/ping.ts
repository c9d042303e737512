import { z } from "zod";
import { defineMethod } from "../descriptor.js";

export const privPing = defineMethod(
  "priv.ping",
  z.object({}).strict(),
  z.object({
    version: z.string(),
    pid: z.number().int(),
    owner_uid: z.number().int(),
    state_dir: z.string(),
    /** The helper's root-owned directory of per-VM run directories. */
    vmm_dir: z.string(),
  }),
);
