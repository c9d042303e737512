import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "../../config/load.js";
import { storageDoctorCheck } from "../../daemon/storage/doctor.js";
import { runChecks } from "../../doctor/checks.js";
import { printJson, type Command } from "../command.js";

export const doctorCommand: Command = {
  path: ["doctor"],
  summary: "check this host for what banger needs, with the fix for anything missing",
  usage: "banger doctor [--json]",
  async run(args, ctx) {
    const { values } = parseArgs({ args: [...args], options: { json: { type: "boolean" } }, strict: true });
    let config;
    try {
      config = loadConfig(ctx.layout.configFile);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      ctx.stderr.write(`error: ${e.message}\n`);
      return 1;
    }
    const checks = [...runChecks(config), await storageDoctorCheck(ctx.layout.stateDir, config.storage.clone_strategy)];
    const failed = checks.filter((c) => c.status === "missing");
    if (values.json === true) {
      printJson(ctx.stdout, { ok: failed.length === 0, config: ctx.layout.configFile, checks });
    } else {
      for (const c of checks) {
        const mark = c.status === "ok" ? "ok  " : c.status === "warn" ? "warn" : "FAIL";
        ctx.stdout.write(`[${mark}] ${c.name.padEnd(13)} ${c.detail}\n`);
        if (c.fix !== undefined && c.status !== "ok") ctx.stdout.write(`       ${"".padEnd(13)} fix: ${c.fix}\n`);
      }
      ctx.stdout.write(failed.length === 0 ? "\nall required pieces are present\n" : `\n${failed.length} required piece(s) missing\n`);
    }
    return failed.length === 0 ? 0 : 1;
  },
};
