import { formatEgress, parseEgress, type EgressPolicy } from "../model/egress.js";
import { statement, type Db } from "./database.js";

/** A VM's egress settings (table vm_egress); the row goes with the VM. */
export interface VmEgress {
  readonly policy: EgressPolicy;
  readonly isolate: boolean;
}

/** What a VM without a row has: made before egress policies existed, it was unrestricted. */
export const UNRESTRICTED: VmEgress = { policy: { mode: "all" }, isolate: false };

export function getEgress(db: Db, vmId: string): VmEgress {
  const row = statement(db, "SELECT policy, isolate FROM vm_egress WHERE vm_id = ?").get(vmId) as { policy: string; isolate: number } | undefined;
  if (row === undefined) return UNRESTRICTED;
  const policy = parseEgress(row.policy);
  // Only setEgress writes rows, from parsed policies; a row it cannot read back is not guessed at.
  if ("error" in policy) throw new Error(`stored egress policy of VM ${vmId} is unreadable (${policy.error})`);
  return { policy, isolate: row.isolate === 1 };
}

export function setEgress(db: Db, vmId: string, e: VmEgress): void {
  statement(db, "INSERT INTO vm_egress (vm_id, policy, isolate) VALUES (?, ?, ?) ON CONFLICT (vm_id) DO UPDATE SET policy = excluded.policy, isolate = excluded.isolate").run(vmId, formatEgress(e.policy), e.isolate ? 1 : 0);
}
