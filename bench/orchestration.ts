import { UNRESTRICTED } from "../src/state/egress.js";
import { join } from "node:path";
import { vmMethods } from "../src/daemon/methods/vm.js";
import { operationMethods } from "../src/daemon/methods/operation.js";
import { Dispatcher } from "../src/rpc/dispatcher.js";
import { vmCreate } from "../src/rpc/daemon/vm.js";
import { newOpId } from "../src/rpc/opid.js";
import { callMethod } from "../src/rpc/unix-client.js";
import { serveUnix } from "../src/rpc/unix-server.js";
import { silentLogger } from "../src/system/log.js";
import { systemRunner } from "../src/system/runner.js";
import { makeHarness } from "../test/unit/vm/fakes.js";
import { info, median, round, timed, type BenchResult } from "./stats.js";

/**
 * The daemon's own orchestration cost for vm.create, with every host
 * subsystem (network, storage, VMM, ssh, DNS) replaced by instant fakes
 * (test/unit/vm/fakes.ts) but the real parts kept: the unix-socket RPC
 * server and client, the dispatcher, VmService, the step runner, the
 * operation tracker and SQLite (a file DB in WAL mode). Measures `parallel`
 * concurrent vm.create calls until every operation has finished.
 */
export async function benchOrchestration(parallel = 8, rounds = 5): Promise<Record<string, BenchResult>> {
  const perVmWall: number[] = [];
  for (let round_ = 0; round_ <= rounds; round_++) {
    const h = makeHarness({ prefix: "bgt-bench-orch-" });
    const socketPath = join(h.dir, "bench.sock");
    const server = await serveUnix({ socketPath, dispatcher: new Dispatcher([...vmMethods({ service: h.service, reconciled: Promise.resolve(), stateDir: h.dir, runner: systemRunner, db: h.db, defaultEgress: UNRESTRICTED }), ...operationMethods(h.ops, new AbortController().signal)]), logger: silentLogger, allowedUids: [process.getuid?.() ?? 0] });
    try {
      const opIds = Array.from({ length: parallel }, () => newOpId());
      const wall = await timed(async () => {
        await Promise.all(opIds.map((opId, i) => callMethod(socketPath, vmCreate, { name: `orch-${i}` }, { opId })));
        await h.service.idle();
      });
      for (const id of opIds) {
        const op = h.ops.get(id);
        if (op?.state !== "succeeded") throw new Error(`fake create ${id} did not succeed: ${JSON.stringify(op)}`);
      }
      // Round 0 warms up (JIT, SQLite page cache) and is dropped.
      if (round_ > 0) {
        perVmWall.push(wall / parallel);
      }
    } finally {
      await new Promise((r) => server.close(r));
      h.close();
    }
  }
  return {
    // Informational: a few ms of in-process work with nothing measured beside it to divide by.
    daemon_orchestration_wall_ms_per_vm: info(round(median(perVmWall), 2), `ms per VM: wall of ${parallel} parallel vm.create RPCs until all operations done / ${parallel}; real RPC + SQLite, subsystems faked (daemon-only overhead)`),
  };
}
