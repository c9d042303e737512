import assert from "node:assert/strict";
import { test } from "node:test";
import type { CliContext } from "../../../src/cli/command.js";
import { vmListCommand } from "../../../src/cli/commands/vm/list.js";
import { resolveLayout } from "../../../src/paths/paths.js";

/**
 * ctx.call is typed by method name from the daemon's descriptors (types only,
 * no zod at runtime). The @ts-expect-error lines make `tsc` fail if a wrong
 * method, param or result field ever type-checks; the runtime part checks the
 * name that goes on the wire.
 */
void test("ctx.call takes method names typed from the descriptors and sends the name", async () => {
  const sent: { method: string; params: unknown }[] = [];
  let out = "";
  const ctx: CliContext = {
    layout: resolveLayout({ HOME: "/nonexistent", BANGER_STATE_DIR: "/s", BANGER_RUNTIME_DIR: "/r" }),
    stdout: { write: (s: string) => { out += s; } },
    stderr: { write: () => undefined },
    env: {},
    opId: "op-s2types0001",
    dial: { label: "no daemon in this test", open: () => { throw new Error("no daemon in this test"); } },
    call: (method, params) => {
      sent.push({ method, params });
      return Promise.resolve({ vms: [] } as never);
    },
  };
  const typeOnly = async (): Promise<void> => {
    const { vms } = await ctx.call("vm.list", {});
    const first: string | undefined = vms[0]?.dns_name;
    // @ts-expect-error no such method
    await ctx.call("vm.nope", {});
    // @ts-expect-error name must be a string
    await ctx.call("vm.get", { name: 1 });
    // @ts-expect-error not a field of the VM view
    assert.equal((await ctx.call("vm.get", { name: first ?? "" })).nope, undefined);
  };
  assert.equal(typeof typeOnly, "function");
  assert.equal(await vmListCommand.run(["--json"], ctx), 0);
  assert.deepEqual(sent, [{ method: "vm.list", params: {} }]);
  assert.equal(out, "[]\n");
});
