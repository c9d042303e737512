import { mkdirSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig } from "../config/load.js";
import { resolveLayout, state } from "../paths/paths.js";
import { Dispatcher } from "../rpc/dispatcher.js";
import { serveUnix } from "../rpc/unix-server.js";
import { openDatabase, restorePreMigrationCopy, selfCheck } from "../state/database.js";
import { createLogger } from "../system/log.js";
import { systemRunner } from "../system/runner.js";
import { VERSION } from "../version.js";
import type { DaemonEnv } from "./env.js";
import { publishedNames } from "./dns/published-names.js";
import { egressService } from "./egress/service.js";
import { DnsServer } from "./dns/server.js";
import { unixHelperClient } from "./helper-client.js";
import { forwardUpstreams } from "./network/upstream-dns.js";
import { daemonMethods } from "./registry.js";
import { ensureRuntimeDir, RuntimeDirError } from "./runtime-dir.js";
import { createVmmService } from "./vmm-service.js";

const USAGE = `usage: bangerd [--system] [--check | --restore-schema]

The banger owner daemon (foreground). Runs as the user who owns the VMs;
privileged work goes to bangerd-root. Paths: BANGER_STATE_DIR,
BANGER_RUNTIME_DIR, BANGER_CONFIG, BANGER_SOCKET, BANGER_HELPER_SOCKET.
--check loads the code and its native modules, prints {"version","schema"}
as JSON and exits (banger update runs it before switching to a version).
--restore-schema puts back the copy of the state database taken before a
newer banger migrated it, moving that one aside, prints what it did as JSON
and exits (a rolled-back banger update runs it with the daemon stopped).`;

export async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: { system: { type: "boolean" }, check: { type: "boolean" }, "restore-schema": { type: "boolean" }, help: { type: "boolean", short: "h" } }, strict: true }));
  } catch (e) {
    process.stderr.write(`bangerd: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (values.check === true) {
    process.stdout.write(JSON.stringify(selfCheck()) + "\n");
    return 0;
  }
  process.umask(0o077);
  const layout = resolveLayout(process.env, values.system === true ? "system" : undefined);
  if (values["restore-schema"] === true) {
    process.stdout.write(JSON.stringify(restorePreMigrationCopy(state.database(layout.stateDir)) ?? {}) + "\n");
    return 0;
  }
  const logger = createLogger(process.stderr, { proc: "bangerd" });
  const config = loadConfig(layout.configFile);
  mkdirSync(layout.stateDir, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.() ?? 0;
  try {
    ensureRuntimeDir(layout.runtimeDir, uid);
  } catch (e) {
    if (!(e instanceof RuntimeDirError)) throw e;
    process.stderr.write(`bangerd: ${e.message}\n`);
    return 1;
  }
  const env: DaemonEnv = {
    layout,
    config,
    db: openDatabase(state.database(layout.stateDir)),
    runner: systemRunner,
    logger,
    helper: unixHelperClient(layout.helperSocket),
    ownerUid: uid,
    ownerGid: process.getgid?.() ?? 0,
  };
  const egress = egressService(env);
  const dns = new DnsServer(logger, { upstreams: forwardUpstreams(config.network.upstream_dns), guestCidr: config.network.cidr, egress: egress.gate });
  const dnsAddress = await dns.start(config.network.dns_listen);
  const names = publishedNames(dns, env);
  const vmm = await createVmmService(env);
  const daemon = daemonMethods(env, { dns, names, vmm: vmm.deps, egress: egress.deps, vmmInfo: vmm.info });
  // The hosts file keeps running VMs' names across daemon restarts; what stopped meanwhile goes now.
  void daemon.reconciled.then(() => names.syncHost("op-startup0"));
  const server = await serveUnix({ socketPath: layout.daemonSocket, dispatcher: new Dispatcher(daemon.methods, { checkResults: false }), logger, allowedUids: [uid] });
  logger.info("daemon listening", { socket: layout.daemonSocket, version: VERSION, state_dir: layout.stateDir, dns: dnsAddress });
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      daemon.stopServing();
      server.close(() => { resolve(); });
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  await daemon.shutdown();
  vmm.close();
  await dns.close();
  env.db.close();
  logger.info("daemon stopped");
  return 0;
}
