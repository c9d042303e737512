import { isAbsolute, resolve } from "node:path";
import { UsageError, type CliContext } from "./command.js";

/**
 * A file flag the daemon opens (image build --kernel, image import --rootfs, ...): the daemon reads it
 * on its own host. Locally a relative path is this directory's; through a remote context it names a
 * file on that host, so it must be absolute there: this directory means nothing to it.
 */
export function daemonPath(ctx: CliContext, flag: string, value: string): string {
  if (ctx.remote === undefined) return resolve(value);
  if (!isAbsolute(value)) throw new UsageError(`through context ${ctx.remote.name}, --${flag} names a file on that host: give its absolute path there (copy a local file over first, e.g. with scp)`);
  return value;
}
