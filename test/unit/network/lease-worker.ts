// Worker for lease.test.ts: its own SQLite connection to the shared file,
// waits on a shared barrier so every worker allocates at the same moment.
import { parentPort, workerData } from "node:worker_threads";
import { openDatabase } from "../../../src/state/database.js";
import { allocateLease } from "../../../src/daemon/network/lease.js";

interface Job { dbPath: string; vmIds: string[]; cidr: string; barrier: SharedArrayBuffer; workers: number }
const job = workerData as Job;
const db = openDatabase(job.dbPath);
const counter = new Int32Array(job.barrier);
Atomics.add(counter, 0, 1);
while (Atomics.load(counter, 0) < job.workers) Atomics.wait(counter, 0, Atomics.load(counter, 0), 5);
const leases = job.vmIds.map((id) => allocateLease(db, id, { cidr: job.cidr }));
db.close();
parentPort?.postMessage(leases);
