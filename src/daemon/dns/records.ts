import type { Db } from "../../state/database.js";

/**
 * The record set for the DNS server rebuilt from the state store (the seed's
 * rebuildDNS): every VM the store believes is running, by name, with its
 * leased IP. bangerd calls it at start-up (after re-adopting VMs) so a daemon
 * restart does not leave NAME.vm unanswerable until each VM is restarted.
 */
export function runningVmRecords(db: Db): Map<string, string> {
  const rows = db.prepare("SELECT vms.name AS name, leases.ip AS ip FROM vms JOIN leases ON leases.vm_id = vms.id WHERE vms.state = 'running' ORDER BY vms.name").all() as { name: string; ip: string }[];
  return new Map(rows.map((r) => [r.name, r.ip]));
}
