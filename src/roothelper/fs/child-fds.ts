import { closeSync } from "node:fs";

/** Descriptors passed to a child as fds 3, 4, ...: add() returns the /proc/self/fd path the child will use. */
export class ChildFds {
  readonly fds: number[] = [];
  add(fd: number): string {
    this.fds.push(fd);
    return `/proc/self/fd/${2 + this.fds.length}`;
  }
  /** Close the parent's copies (the child has its own). */
  closeAll(): void {
    for (const fd of this.fds.splice(0)) {
      try {
        closeSync(fd);
      } catch {
        // already closed
      }
    }
  }
}
