import { chmodSync } from "node:fs";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import { parseConfig } from "../config/load.js";
import { SYSTEM_CONFIG_FILE, SYSTEM_STATE_DIR, DEFAULT_HELPER_SOCKET, helperVmFiles } from "../paths/paths.js";
import { Dispatcher } from "../rpc/dispatcher.js";
import { serveUnix } from "../rpc/unix-server.js";
import { libcLibrary } from "../system/libc.js";
import { createLogger } from "../system/log.js";
import { dirfdCalls } from "../system/dirfd-calls.js";
import { systemRunner } from "../system/runner.js";
import { VERSION } from "../version.js";
import type { HelperEnv } from "./env.js";
import { openManagedRoot, openRootOnlyDir, TrustError } from "./fs/managed-root.js";
import { readTrustedConfig, trustedBinary, trustedDir } from "./fs/trust.js";
import { HostsFile } from "./hosts-file.js";
import { ownerParserRunner } from "./owner-parsers.js";
import { VmmProcesses } from "./vmm-processes.js";
import { VmmRunDirs } from "./vmm-run-dirs.js";
import { helperMethods } from "./registry.js";

const USAGE = `usage: bangerd-root --owner UID [--owner-gid GID] [--state-dir DIR] [--config FILE] [--socket PATH]
       bangerd-root --check

The root helper: the only banger process that runs as root. Its managed
root (the owner's state dir) and owner come from these flags, never from a
request. What it creates for VMMs lives next to its socket, in vm/.
--check loads the code and libc through koffi, prints {"version"} as JSON
and exits (banger update runs it before switching to a version).`;

export async function main(argv: readonly string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        owner: { type: "string" },
        "owner-gid": { type: "string" },
        "state-dir": { type: "string", default: SYSTEM_STATE_DIR },
        config: { type: "string", default: SYSTEM_CONFIG_FILE },
        socket: { type: "string", default: process.env["BANGER_HELPER_SOCKET"] ?? DEFAULT_HELPER_SOCKET },
        check: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }));
  } catch (e) {
    process.stderr.write(`bangerd-root: ${(e as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help === true) {
    process.stdout.write(USAGE + "\n");
    return 0;
  }
  if (values.check === true) {
    libcLibrary(); // the native FFI every privileged call goes through
    process.stdout.write(JSON.stringify({ version: VERSION }) + "\n");
    return 0;
  }
  const ownerUid = Number(values.owner);
  if (values.owner === undefined || !Number.isSafeInteger(ownerUid) || ownerUid < 0) {
    process.stderr.write(`bangerd-root: --owner UID is required (the uid of the user whose bangerd may call this helper)\n${USAGE}\n`);
    return 2;
  }
  const ownerGid = values["owner-gid"] !== undefined ? Number(values["owner-gid"]) : ownerUid;
  for (const [flag, dir] of [["--state-dir", values["state-dir"]], ["--socket", values.socket]] as const) {
    if (!dir.startsWith("/")) {
      process.stderr.write(`bangerd-root: ${flag} must be an absolute path\n`);
      return 2;
    }
  }
  if (process.getuid?.() !== 0) process.stderr.write("bangerd-root: warning: not running as root; privileged methods will fail\n");

  process.umask(0o077);
  // Descriptors whoever started the helper left open without close-on-exec
  // would reach every child, the owner-run parsers and VMMs included: only
  // what a method hands over (extraFds) may.
  dirfdCalls().cloexecFrom(3);
  const logger = createLogger(process.stderr, { proc: "bangerd-root" });
  const socketDir = dirname(values.socket);
  let env: HelperEnv;
  try {
    // Root's all the way down (walked from / by descriptor, missing parts made root's): the socket
    // is bound, and vm/ made, by name in it, so no name on the way may be one the owner can change.
    const socketRoot = trustedDir("helper socket dir", socketDir);
    // The owner must traverse it to reach the socket; the socket itself is 0600 and the owner's.
    chmodSync(`/proc/self/fd/${socketRoot.fd}`, 0o711);
    try {
      dirfdCalls().mkdirat(socketRoot.fd, helperVmFiles.vmsLeaf, 0o711);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
    env = trustedEnv(values.config, ownerUid, ownerGid, values["state-dir"], helperVmFiles.vmsDir(socketDir), logger);
  } catch (e) {
    if (!(e instanceof TrustError)) throw e;
    process.stderr.write(`bangerd-root: refusing to start: ${e.message}\n`);
    return 1;
  }
  const server = await serveUnix({
    socketPath: values.socket,
    dispatcher: new Dispatcher(helperMethods(env)),
    logger,
    allowedUids: [ownerUid],
    socketOwner: { uid: ownerUid, gid: ownerGid },
  });
  logger.info("root helper listening", { socket: values.socket, owner_uid: ownerUid, version: VERSION, state_dir: env.roots.state.path, vmm_dir: env.vmmRunDirs.root.path });
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      server.close(() => { resolve(); });
    };
    process.once("SIGTERM", stop);
    process.once("SIGINT", stop);
  });
  logger.info("root helper stopped");
  return 0;
}

/**
 * Everything the helper trusts, checked once before it listens: its config,
 * the VMM binaries, setpriv and the parsers it runs must be root's alone
 * (fs/trust.ts), the managed root must be a real directory of root or the
 * owner (fs/managed-root.ts), the VMMs' run directories root's own, writable
 * by nobody else, and so is the jail dir (with every directory above it)
 * when the jailer is used, and the hosts file's directory when the hosts
 * file may be edited.
 * Any failure is a TrustError naming the file and the rule.
 */
function trustedEnv(configPath: string, ownerUid: number, ownerGid: number, stateDir: string, vmmDir: string, logger: HelperEnv["logger"]): HelperEnv {
  const config = parseConfig(readTrustedConfig(configPath) ?? "", configPath);
  // Root's alone (root-owned, 0711, reached without symlinks): pidfiles, sockets and the launch records that
  // decide which root processes may be signalled live here. The owner may traverse it to read a pidfile.
  const vmmRunDirs = new VmmRunDirs(openRootOnlyDir("VMM run dirs", vmmDir, 0o711));
  const jailer = config.vmm.jailer === "never" ? undefined : trustedBinary("vmm.jailer_bin", config.vmm.jailer_bin);
  return {
    ownerUid,
    ownerGid,
    // The jailer resolves its --chroot-base-dir by name as root: only a directory that is root's all the way down will do.
    roots: { state: openManagedRoot("state dir", stateDir, ownerUid), jail: jailer === undefined ? undefined : trustedDir("vmm.jail_dir", config.vmm.jail_dir) },
    vmmRunDirs,
    config,
    binaries: {
      qemu: trustedBinary("vmm.qemu_bin", config.vmm.qemu_bin),
      firecracker: trustedBinary("vmm.firecracker_bin", config.vmm.firecracker_bin),
      jailer,
    },
    runner: systemRunner,
    parserRunner: ownerParserRunner(
      systemRunner,
      { setpriv: trustedBinary("tools.setpriv_bin", config.tools.setpriv_bin), debugfs: trustedBinary("tools.debugfs_bin", config.tools.debugfs_bin), e2fsck: trustedBinary("tools.e2fsck_bin", config.tools.e2fsck_bin) },
      { uid: ownerUid, gid: ownerGid },
    ),
    logger,
    // Root edits this file for every VM start and stop: its directory must be one only root can change.
    hostsFile: config.network.host_dns === "auto" || config.network.host_dns === "hosts" ? new HostsFile(trustedDir("network.hosts_file's directory", dirname(config.network.hosts_file)), basename(config.network.hosts_file)) : undefined,
    vmms: new VmmProcesses(ownerUid, vmmRunDirs.root),
  };
}
