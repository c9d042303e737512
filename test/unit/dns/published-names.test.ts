import assert from "node:assert/strict";
import { test } from "node:test";
import { configSchema } from "../../../src/config/schema.js";
import { publishedNames } from "../../../src/daemon/dns/published-names.js";
import { DnsServer } from "../../../src/daemon/dns/server.js";
import type { DaemonEnv } from "../../../src/daemon/env.js";
import type { HelperClient } from "../../../src/daemon/helper-client.js";
import { resolveLayout } from "../../../src/paths/paths.js";
import type { MethodDescriptor } from "../../../src/rpc/descriptor.js";
import { createLogger, silentLogger } from "../../../src/system/log.js";
import { FakeRunner } from "../../../src/system/runner.js";

function env(helper: HelperClient, logs: string[] = []): DaemonEnv {
  return {
    layout: resolveLayout({ BANGER_STATE_DIR: "/nonexistent", BANGER_RUNTIME_DIR: "/nonexistent" }),
    config: configSchema.parse({ network: { cidr: "172.16.90.0/24" } }),
    db: undefined as never,
    runner: new FakeRunner(),
    logger: createLogger({ write: (line: string) => { logs.push(line); } }),
    helper,
    ownerUid: 1000,
    ownerGid: 1000,
  };
}

void test("published names: the helper gets the full list on every publish and unpublish, with the caller's op id; a failed sync is logged, never fatal", async (t) => {
  const calls: { method: string; params: unknown; opId: string }[] = [];
  let fail = false;
  const helper: HelperClient = {
    socketPath: "(fake)",
    call(d: MethodDescriptor, params: unknown, opId: string): Promise<never> {
      calls.push({ method: d.name, params, opId });
      return fail ? Promise.reject(new Error("helper down")) : Promise.resolve({} as never);
    },
  };
  const logs: string[] = [];
  const server = new DnsServer(silentLogger);
  t.after(async () => { await server.close(); });
  await server.start("127.0.0.1:0");
  const names = publishedNames(server, env(helper, logs));
  await names.publish("web", "172.16.90.2", "op-1");
  await names.publish("db", "172.16.90.3", "op-2");
  await names.unpublish("web", "op-3");
  assert.deepEqual(calls.map((c) => [c.method, c.params, c.opId]), [
    ["priv.sync_hosts", { entries: [{ name: "web", ip: "172.16.90.2" }] }, "op-1"],
    ["priv.sync_hosts", { entries: [{ name: "web", ip: "172.16.90.2" }, { name: "db", ip: "172.16.90.3" }] }, "op-2"],
    ["priv.sync_hosts", { entries: [{ name: "db", ip: "172.16.90.3" }] }, "op-3"],
  ]);
  assert.equal(server.lookup("db"), "172.16.90.3");
  fail = true;
  await names.publish("api", "172.16.90.4", "op-4");
  assert.equal(server.lookup("api"), "172.16.90.4", "guests get the name even when the host's file could not be synced");
  assert.ok(logs.some((l) => l.includes("not synced to the host's hosts file") && l.includes("helper down") && l.includes("op-4")), logs.join("\n"));
  await names.syncHost("op-5");
  assert.deepEqual(calls.at(-1)?.params, { entries: [{ name: "db", ip: "172.16.90.3" }, { name: "api", ip: "172.16.90.4" }] });
});
