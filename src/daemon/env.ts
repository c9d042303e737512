import type { Config } from "../config/schema.js";
import type { Layout } from "../paths/paths.js";
import type { Db } from "../state/database.js";
import type { Logger } from "../system/log.js";
import type { Runner } from "../system/runner.js";
import type { HelperClient } from "./helper-client.js";

/** Everything the daemon's services share; built once at start-up and passed down as a value. */
export interface DaemonEnv {
  readonly layout: Layout;
  readonly config: Config;
  readonly db: Db;
  readonly runner: Runner;
  readonly logger: Logger;
  readonly helper: HelperClient;
  readonly ownerUid: number;
  readonly ownerGid: number;
}
