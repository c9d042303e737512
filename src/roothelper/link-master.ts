import { readlinkSync } from "node:fs";
import { basename } from "node:path";

/** The bridge a link is enslaved to (sysfs), or undefined (no such link, or on none). */
export function sysfsMaster(link: string): string | undefined {
  try {
    return basename(readlinkSync(`/sys/class/net/${link}/master`));
  } catch {
    return undefined;
  }
}
