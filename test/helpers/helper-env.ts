import { chownSync, mkdirSync } from "node:fs";
import { configSchema, type Config } from "../../src/config/schema.js";
import { helperVmFiles } from "../../src/paths/paths.js";
import type { HelperEnv } from "../../src/roothelper/env.js";
import { openManagedRoot, openRootOnlyDir } from "../../src/roothelper/fs/managed-root.js";
import { trustedDir } from "../../src/roothelper/fs/trust.js";
import { ownerParserRunner } from "../../src/roothelper/owner-parsers.js";
import { VmmProcesses } from "../../src/roothelper/vmm-processes.js";
import { VmmRunDirs } from "../../src/roothelper/vmm-run-dirs.js";
import { createLogger } from "../../src/system/log.js";
import { FakeRunner, type Runner } from "../../src/system/runner.js";
import { testExecutable } from "./test-executable.js";

/**
 * A HelperEnv for in-process tests, built like main.ts builds it: the state
 * dir (created here and given to the owner) opened as a managed root, and
 * `helperDir`/vm (created root's, 0711: the tests run as root) as the VMMs'
 * run directories, and `jailDir` (made root's when missing) as the jail dir. Binaries are the config's names, held like trusted ones but unchecked
 * (test-executable.ts): tests use fakes and doubles, which the
 * trust-anchor checks of a real start would refuse.
 * Parsers go through the same setpriv wrapping as in production, on `runner`.
 */
export function testHelperEnv(o: { readonly stateDir: string; readonly helperDir: string; readonly jailDir?: string; readonly ownerUid?: number; readonly ownerGid?: number; readonly config?: Config; readonly runner?: Runner }): HelperEnv {
  const ownerUid = o.ownerUid ?? 1000;
  const ownerGid = o.ownerGid ?? ownerUid;
  mkdirSync(o.stateDir, { recursive: true });
  chownSync(o.stateDir, ownerUid, ownerGid);
  const vmmDir = helperVmFiles.vmsDir(o.helperDir);
  mkdirSync(vmmDir, { recursive: true });
  const config = o.config ?? configSchema.parse({});
  const runner = o.runner ?? new FakeRunner();
  const vmmRunDirs = new VmmRunDirs(openRootOnlyDir("VMM run dirs", vmmDir, 0o711));
  return {
    ownerUid,
    ownerGid,
    roots: { state: openManagedRoot("state dir", o.stateDir, ownerUid), jail: o.jailDir === undefined ? undefined : trustedDir("vmm.jail_dir", o.jailDir) },
    vmmRunDirs,
    config,
    binaries: { qemu: testExecutable(config.vmm.qemu_bin), firecracker: testExecutable(config.vmm.firecracker_bin), jailer: config.vmm.jailer === "never" ? undefined : testExecutable(config.vmm.jailer_bin) },
    runner,
    parserRunner: ownerParserRunner(runner, { setpriv: testExecutable(config.tools.setpriv_bin), debugfs: testExecutable(config.tools.debugfs_bin), e2fsck: testExecutable(config.tools.e2fsck_bin) }, { uid: ownerUid, gid: ownerGid }),
    logger: createLogger({ write: () => true }),
    vmms: new VmmProcesses(ownerUid, vmmRunDirs.root),
  };
}
