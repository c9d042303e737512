import { constants, openSync } from "node:fs";
import { basename, dirname } from "node:path";
import { startsWithShebang, type TrustedExecutable } from "../../src/roothelper/fs/trust.js";
import { O_PATH } from "../../src/system/dirfd-calls.js";
import { resolveBinary } from "../../src/vmm/binaries.js";

/**
 * A binary held the way the helper holds a trusted one (executed through its
 * directory's descriptor, opened on first use), without the trust-anchor
 * checks: tests run fakes and doubles from temp dirs, which a real start
 * would refuse. A name is looked up in PATH at exec; one not installed fails there.
 */
export function testExecutable(nameOrPath: string): TrustedExecutable {
  let dirFd: number | undefined;
  return {
    // As configured, so argv assertions see the config's name.
    path: nameOrPath,
    execAt() {
      const found = resolveBinary(nameOrPath) ?? nameOrPath;
      dirFd ??= openSync(dirname(found), O_PATH | constants.O_DIRECTORY);
      return { dirFd, name: basename(found), script: startsWithShebang(dirFd, basename(found)) };
    },
  };
}
