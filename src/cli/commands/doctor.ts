import type { Command } from "../command.js";
import type { FlagTable } from "../flags.js";

export const DOCTOR_FLAGS = { json: { type: "boolean", description: "print {ok, config, checks} as JSON" } } as const satisfies FlagTable;

export const doctorCommand: Command = {
  path: ["doctor"],
  local: true,
  summary: "check this host for what banger needs, with the fix for anything missing",
  usage: "banger doctor [--json]",
  description: "Exits 1 when something needed is missing.",
  flags: DOCTOR_FLAGS,
  examples: ["banger doctor"],
  async run(args, ctx) {
    // Loaded on use: see doctor-run.ts (it is what keeps zod and child_process out of every other command's start).
    const { runDoctor } = await import("./doctor-run.js");
    return runDoctor(args, ctx);
  },
};
