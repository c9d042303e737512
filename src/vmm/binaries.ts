import { accessSync, constants } from "node:fs";
import { isAbsolute, join } from "node:path";

/** Resolve a VMM binary the way execvp does (absolute path, or first executable hit in PATH). */
export function resolveBinary(name: string, pathEnv: string = process.env["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"): string | undefined {
  const candidates = isAbsolute(name) ? [name] : name.includes("/") ? [] : pathEnv.split(":").filter((d) => d !== "").map((d) => join(d, name));
  for (const p of candidates) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}
