/**
 * Descriptors passed to a child as fds 3, 4, ...: add() returns the
 * /proc/self/fd path the child will use. Only a list: the descriptors are
 * owned (and closed) by whoever opened them (launch/spec-files.ts).
 */
export class ChildFds {
  readonly fds: number[] = [];
  add(fd: number): string {
    this.fds.push(fd);
    return `/proc/self/fd/${2 + this.fds.length}`;
  }
}
