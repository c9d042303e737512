import type { Config } from "../config/schema.js";
import type { Logger } from "../system/log.js";
import type { Runner } from "../system/runner.js";

/**
 * What every privileged method may rely on. All of it comes from the helper's
 * own flags and config file, never from a request.
 */
export interface HelperEnv {
  readonly ownerUid: number;
  readonly ownerGid: number;
  /** Managed roots: request paths must resolve inside these. */
  readonly stateDir: string;
  readonly runtimeDir: string;
  readonly config: Config;
  readonly runner: Runner;
  readonly logger: Logger;
}
