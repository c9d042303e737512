import { constants, openSync } from "node:fs";
import { basename, dirname } from "node:path";
import { startsWithShebang, type TrustedExecutable } from "../../src/roothelper/fs/trust.js";
import { O_PATH } from "../../src/system/dirfd-calls.js";
import { resolveBinary } from "../../src/vmm/binaries.js";

/**
 * A binary held the way the helper holds a trusted one (executed through its
 * directory's descriptor, opened on first use), without the trust-anchor
 * checks: tests run fakes and doubles from temp dirs, which a real start
 * would refuse. A name not installed stays as it is, and fails at exec.
 */
export function testExecutable(nameOrPath: string): TrustedExecutable {
  const path = resolveBinary(nameOrPath) ?? nameOrPath;
  let dirFd: number | undefined;
  return {
    path,
    execAt() {
      dirFd ??= openSync(dirname(path), O_PATH | constants.O_DIRECTORY);
      return { dirFd, name: basename(path), script: startsWithShebang(dirFd, basename(path)) };
    },
  };
}
