import { chownSync, mkdirSync } from "node:fs";
import { configSchema, type Config } from "../../src/config/schema.js";
import type { HelperEnv } from "../../src/roothelper/env.js";
import { openManagedRoot } from "../../src/roothelper/fs/managed-root.js";
import { ownerParserRunner } from "../../src/roothelper/owner-parsers.js";
import { VmmProcesses } from "../../src/roothelper/vmm-processes.js";
import { createLogger } from "../../src/system/log.js";
import { FakeRunner, type Runner } from "../../src/system/runner.js";

/**
 * A HelperEnv for in-process tests, built like main.ts builds it: the roots
 * (created here and given to the owner when missing) opened as managed
 * roots. Binaries are the config's names as they are: tests use fakes and
 * doubles, which the trust-anchor checks of a real start would refuse.
 * Parsers go through the same setpriv wrapping as in production, on `runner`.
 */
export function testHelperEnv(o: { readonly stateDir: string; readonly runtimeDir: string; readonly ownerUid?: number; readonly ownerGid?: number; readonly config?: Config; readonly runner?: Runner }): HelperEnv {
  const ownerUid = o.ownerUid ?? 1000;
  const ownerGid = o.ownerGid ?? ownerUid;
  for (const d of [o.stateDir, o.runtimeDir]) {
    mkdirSync(d, { recursive: true });
    chownSync(d, ownerUid, ownerGid);
  }
  const config = o.config ?? configSchema.parse({});
  const runner = o.runner ?? new FakeRunner();
  return {
    ownerUid,
    ownerGid,
    roots: { state: openManagedRoot("state dir", o.stateDir, ownerUid), runtime: openManagedRoot("runtime dir", o.runtimeDir, ownerUid) },
    config,
    binaries: { qemu: config.vmm.qemu_bin, firecracker: config.vmm.firecracker_bin, jailer: config.vmm.jailer === "never" ? undefined : config.vmm.jailer_bin },
    runner,
    parserRunner: ownerParserRunner(runner, { setpriv: config.tools.setpriv_bin, debugfs: config.tools.debugfs_bin, e2fsck: config.tools.e2fsck_bin }, { uid: ownerUid, gid: ownerGid }),
    logger: createLogger({ write: () => true }),
    vmms: new VmmProcesses(ownerUid),
  };
}
