import { RpcError } from "../../rpc/errors.js";
import { guestRange, intToIpv4, ipv4ToInt } from "../../model/ipv4.js";
import { inTransaction, type Db, statement } from "../../state/database.js";

/** One row of the `leases` table: a VM's network identity, held from create until delete. */
export interface LeaseRow {
  readonly vmId: string;
  readonly ip: string;
  readonly mac: string;
  readonly tap: string;
  readonly cid: number;
}

const VM_ID_RE = /^[0-9a-f]{32}$/;
/** vsock CIDs 0-2 are reserved (hypervisor, local, host). */
const FIRST_CID = 3;

function checkVmId(vmId: string): string {
  if (!VM_ID_RE.test(vmId)) throw new RpcError("bad_params", `vm id ${JSON.stringify(vmId)} is not 32 hex chars`);
  return vmId;
}

/** `tap-fc-<first 8 hex of the VM id>`: fits IFNAMSIZ (15) and matches the helper's validator. */
export function tapForVm(vmId: string): string {
  return `tap-fc-${checkVmId(vmId).slice(0, 8)}`;
}

export function poolTapName(index: number): string {
  return `tap-pool-${index}`;
}

/**
 * A MAC derived from the VM id, so it is stable for the VM's life and needs no
 * extra state: first octet 02 (locally administered, unicast), then the first
 * 10 hex digits of the id.
 */
export function macForVm(vmId: string): string {
  const hex = checkVmId(vmId).slice(0, 10);
  return ["02", ...(hex.match(/../g) ?? [])].join(":");
}

export interface LeaseOptions {
  readonly cidr: string;
  /** When > 0, new leases take a free `tap-pool-N` (N < size) before falling back to `tap-fc-<id8>`. */
  readonly tapPoolSize?: number;
}

interface Row { vm_id: string; ip: string; mac: string; tap: string; cid: number }

const toLease = (r: Row): LeaseRow => ({ vmId: r.vm_id, ip: r.ip, mac: r.mac, tap: r.tap, cid: r.cid });

export function getLease(db: Db, vmId: string): LeaseRow | undefined {
  const row = statement(db, "SELECT vm_id, ip, mac, tap, cid FROM leases WHERE vm_id = ?").get(vmId) as Row | undefined;
  return row === undefined ? undefined : toLease(row);
}

export function listLeases(db: Db): LeaseRow[] {
  return (statement(db, "SELECT vm_id, ip, mac, tap, cid FROM leases ORDER BY ip").all() as Row[]).map(toLease);
}

/**
 * Get-or-allocate the VM's lease inside one IMMEDIATE transaction: the write
 * lock is taken before reading what is in use, so concurrent creates (other
 * connections, other processes) serialize and can never pick the same IP,
 * tap or CID. A VM that already holds a lease gets it back unchanged, which is
 * what keeps its IP stable across stop/start. The row goes away with the VM
 * (ON DELETE CASCADE) or through releaseLease.
 */
export function allocateLease(db: Db, vmId: string, opts: LeaseOptions): LeaseRow {
  checkVmId(vmId);
  const range = guestRange(opts.cidr);
  return inTransaction(db, () => {
    const existing = getLease(db, vmId);
    if (existing !== undefined) return existing;
    const held = statement(db, "SELECT ip, tap, cid FROM leases").all() as Pick<Row, "ip" | "tap" | "cid">[];
    const usedIps = new Set(held.map((r) => ipv4ToInt(r.ip)));
    let ip: number | undefined;
    for (let n = range.first; n <= range.last; n++) {
      if (!usedIps.has(n)) {
        ip = n;
        break;
      }
    }
    if (ip === undefined) {
      throw new RpcError("conflict", `no free guest address left in ${opts.cidr} (${held.length} VMs hold leases); delete unused VMs or configure a larger network.cidr`);
    }
    const usedCids = new Set(held.map((r) => r.cid));
    let cid = FIRST_CID;
    while (usedCids.has(cid)) cid++;
    const usedTaps = new Set(held.map((r) => r.tap));
    let tap = tapForVm(vmId);
    for (let i = 0; i < (opts.tapPoolSize ?? 0); i++) {
      if (!usedTaps.has(poolTapName(i))) {
        tap = poolTapName(i);
        break;
      }
    }
    const lease: LeaseRow = { vmId, ip: intToIpv4(ip), mac: macForVm(vmId), tap, cid };
    try {
      statement(db, "INSERT INTO leases (vm_id, ip, mac, tap, cid) VALUES (?, ?, ?, ?, ?)").run(lease.vmId, lease.ip, lease.mac, lease.tap, lease.cid);
    } catch (e) {
      // Only the id-derived MAC/tap can collide here (IP and CID were chosen free under the lock): two ids sharing a prefix.
      if (e instanceof Error && /UNIQUE constraint failed/.test(e.message)) {
        throw new RpcError("conflict", `VM id ${vmId} shares its first hex digits with another VM's MAC or tap (${e.message}); create the VM again to get a new id`);
      }
      throw e;
    }
    return lease;
  });
}

/** Frees the VM's lease; idempotent. Returns whether a row was removed. */
export function releaseLease(db: Db, vmId: string): boolean {
  return inTransaction(db, () => statement(db, "DELETE FROM leases WHERE vm_id = ?").run(vmId).changes > 0);
}
