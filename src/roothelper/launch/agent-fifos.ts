import { constants } from "node:fs";
import { HELPER_VM_LEAVES } from "../../paths/paths.js";
import { dirfdCalls } from "../../system/dirfd-calls.js";

/**
 * The guest agent's FIFOs in a fresh run directory (root's, 0711), made relative to its
 * descriptor: qemu (still root when it opens chardevs, before -runas) opens `agent.in` and
 * `agent.out` read-write, and only the helper ever opens them besides.
 */
export function makeAgentFifos(runDirFd: number): void {
  for (const leaf of [HELPER_VM_LEAVES.agentIn, HELPER_VM_LEAVES.agentOut]) dirfdCalls().mknodat(runDirFd, leaf, constants.S_IFIFO | 0o600, 0n);
}
