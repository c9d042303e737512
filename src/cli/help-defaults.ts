import { configSchema } from "../config/schema.js";
import type { ConfigDefaultKey } from "./flags.js";

/**
 * The config schema's defaults, for help only: this module (with zod) is bundled apart
 * (scripts/bundle.mjs) so ordinary commands never load it.
 */
export function configDefaults(keys: readonly ConfigDefaultKey[]): Map<ConfigDefaultKey, unknown> {
  const all = configSchema.parse({}) as unknown as Record<string, Record<string, unknown>>;
  return new Map(keys.map((k) => {
    const [section = "", key = ""] = k.split(".");
    return [k, all[section]?.[key]];
  }));
}
