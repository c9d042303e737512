import { readFileSync } from "node:fs";
import { parse as parseToml } from "smol-toml";
import { configSchema, type Config } from "./schema.js";

/** A config problem; the message names the file and the offending key. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

/** Parse config text (TOML). Errors name the key, e.g. `network.cidr: must be an IPv4 CIDR ...`. */
export function parseConfig(text: string, source = "config"): Config {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (e) {
    throw new ConfigError(`${source}: not valid TOML: ${e instanceof Error ? e.message.split("\n")[0] ?? "" : String(e)}`);
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => {
      const key = i.path.join(".");
      if (i.code === "unrecognized_keys") return `${[key, ...i.keys].filter((k) => k !== "").join(".")}: unknown key (check the spelling)`;
      return `${key === "" ? "(top level)" : key}: ${i.message}`;
    });
    throw new ConfigError(`${source}: ${issues.join("; ")}`);
  }
  const cfg = parsed.data;
  validateCidr(cfg.network.cidr, source);
  return cfg;
}

function validateCidr(cidr: string, source: string): void {
  const [addr = ""] = cidr.split("/");
  const octets = addr.split(".");
  if (octets.length !== 4 || octets.some((o) => !/^(0|[1-9][0-9]{0,2})$/.test(o) || Number(o) > 255)) {
    throw new ConfigError(`${source}: network.cidr: ${JSON.stringify(cidr)} has an invalid address`);
  }
}

/** Load the config file; a missing file means all defaults. */
export function loadConfig(path: string): Config {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return parseConfig("", path);
    throw new ConfigError(`${path}: cannot read: ${(e as Error).message}`);
  }
  return parseConfig(text, path);
}
