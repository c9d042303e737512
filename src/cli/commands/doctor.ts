import type { Command } from "../command.js";

export const doctorCommand: Command = {
  path: ["doctor"],
  local: true,
  summary: "check this host for what banger needs, with the fix for anything missing",
  usage: "banger doctor [--json]",
  async run(args, ctx) {
    // Loaded on use: see doctor-run.ts (it is what keeps zod and child_process out of every other command's start).
    const { runDoctor } = await import("./doctor-run.js");
    return runDoctor(args, ctx);
  },
};
