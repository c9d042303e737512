import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";

/** Temp file beside `file`, fsync, rename over it: readers see the old or the new text, never half. */
export function writeFileAtomic(file: string, text: string, mode: number): void {
  const tmp = join(dirname(file), `.${process.pid}.tmp`);
  const fd = openSync(tmp, "wx", mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
}
