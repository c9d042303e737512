import { formatEgress, parseEgress, type EgressPolicy } from "../model/egress.js";
import { statement, type Db } from "./database.js";

/** A VM's egress settings (table vm_egress); the row goes with the VM. */
export interface VmEgress {
  readonly policy: EgressPolicy;
  readonly isolate: boolean;
}

/** What a VM without a row has: made before egress policies existed, it was unrestricted. */
export const UNRESTRICTED: VmEgress = { policy: { mode: "all" }, isolate: false };

interface Row { vm_id: string; policy: string; isolate: number }

function fromRow(row: Row): VmEgress {
  const policy = parseEgress(row.policy);
  // Only setEgress writes rows, from parsed policies; a row it cannot read back is not guessed at.
  if ("error" in policy) throw new Error(`stored egress policy of VM ${row.vm_id} is unreadable (${policy.error})`);
  return { policy, isolate: row.isolate === 1 };
}

export function getEgress(db: Db, vmId: string): VmEgress {
  const row = statement(db, "SELECT vm_id, policy, isolate FROM vm_egress WHERE vm_id = ?").get(vmId) as Row | undefined;
  return row === undefined ? UNRESTRICTED : fromRow(row);
}

/** Every VM's settings by VM id, in one query (`vm list`: one query per VM was most of its time in the daemon). */
export function egressByVm(db: Db): (vmId: string) => VmEgress {
  const byId = new Map((statement(db, "SELECT vm_id, policy, isolate FROM vm_egress").all() as Row[]).map((r) => [r.vm_id, fromRow(r)]));
  return (vmId) => byId.get(vmId) ?? UNRESTRICTED;
}

export function setEgress(db: Db, vmId: string, e: VmEgress): void {
  statement(db, "INSERT INTO vm_egress (vm_id, policy, isolate) VALUES (?, ?, ?) ON CONFLICT (vm_id) DO UPDATE SET policy = excluded.policy, isolate = excluded.isolate").run(vmId, formatEgress(e.policy), e.isolate ? 1 : 0);
}
