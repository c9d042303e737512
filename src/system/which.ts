import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";

/** Where PATH (plus the sbin dirs a non-root PATH often lacks) finds an executable, or undefined. */
export function which(cmd: string, pathEnv: string = process.env["PATH"] ?? ""): string | undefined {
  if (cmd.includes("/")) return isExecutable(cmd) ? cmd : undefined;
  const dirs = [...pathEnv.split(delimiter).filter((d) => d !== ""), "/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin", "/bin"];
  for (const dir of dirs) {
    const p = join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return undefined;
}

function isExecutable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}
