import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createNetNs, linkNamespaces, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { startStack, type Stack } from "../../helpers/stack.js";
import { cliOk, tinyStackConfig } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "ss", "nsenter", "unshare"));

/** GET url from inside `ns`: the body, or "FAILED <why>". */
function get(ns: NetNs, url: string): Promise<string> {
  const source = `fetch(process.argv[1],{signal:AbortSignal.timeout(3000)}).then(r=>r.text()).then(b=>console.log(b.trim()),e=>console.log("FAILED "+(e.cause?.code??e.name)))`;
  return new Promise((resolve) => {
    const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", source, url], { stdio: ["ignore", "pipe", "ignore"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.on("close", () => { resolve(out.trim()); });
  });
}

const serve = (stack: Stack, name: string): Promise<string> =>
  cliOk(stack, ["vm", "exec", name, "--", "sh", "-c", "mkdir -p /root/www && echo hello-from-guest > /root/www/index.html && httpd -p 80 -h /root/www"]);

void test("published ports (qemu, tiny guest): reachable from the host's loopback and from another namespace's address; gone at stop, back at start and after a daemon restart; a second VM asking for the port is refused; nothing left", { skip: SKIP, timeout: 900_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-ports");
  cleanup.push("netns", () => ns.destroy());
  const outside = await createNetNs("bgt-ports-o");
  cleanup.push("outside netns", () => outside.destroy());
  await linkNamespaces(ns, outside, "198.51.100.1/24", "198.51.100.2/24");
  const stack = await startStack({ user, netns: ns, config: tinyStackConfig("qemu") });
  cleanup.push("stack", async () => {
    for (const vm of ["pa", "pb"]) await stack.cli(["vm", "rm", "--force", vm]).catch(() => undefined);
    await stack.stop();
  });
  await cliOk(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  // The bridge outlives VMs by design: the host as a first VM leaves it is what the last must leave.
  await cliOk(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"], 600_000);
  const before = await snapshotHost(ns, stack);

  await cliOk(stack, ["vm", "create", "--image", "tiny", "--name", "pa", "-p", "18080:80", "-p", "198.51.100.1:18081:80"], 600_000);
  await serve(stack, "pa");
  const ip = (JSON.parse(await cliOk(stack, ["vm", "show", "pa", "--json"])) as { ip: string }).ip;
  assert.equal(await get(ns, "http://127.0.0.1:18080/"), "hello-from-guest", "from the host's loopback");
  assert.equal(await get(outside, "http://198.51.100.1:18081/"), "hello-from-guest", "from another namespace, through the address it is bound to");
  assert.match(await get(outside, "http://198.51.100.1:18080/"), /^FAILED/, "the loopback-bound port is not reachable from outside");
  assert.equal(await get(ns, `http://${ip}/`), "hello-from-guest");

  // A second VM asking for the same host port gets the error naming who holds it, and is not created.
  const second = await stack.cli(["vm", "create", "--image", "tiny", "--name", "pb", "-p", "18080:80"]);
  assert.notEqual(second.code, 0);
  assert.match(second.stderr, /host port 127\.0\.0\.1:18080\/tcp is already published by VM "pa"/);
  assert.notEqual((await stack.cli(["vm", "show", "pb"])).code, 0, "the refused VM does not exist");

  await cliOk(stack, ["vm", "stop", "pa"], 120_000);
  assert.match(await get(ns, "http://127.0.0.1:18080/"), /^FAILED/, "not after vm stop");
  assert.match(await get(outside, "http://198.51.100.1:18081/"), /^FAILED/);
  assert.doesNotMatch(await ns.run(["nft", "list", "tables"]), /banger_ports/, "the ports table goes with the last published port");
  assert.match(await cliOk(stack, ["vm", "port", "ls", "pa"]), /127\.0\.0\.1:18080\s+80\s+tcp/, "the records stay for the next start");

  await cliOk(stack, ["vm", "start", "pa"], 600_000);
  await serve(stack, "pa");
  assert.equal(await get(ns, "http://127.0.0.1:18080/"), "hello-from-guest", "again after vm start");
  assert.equal(await get(outside, "http://198.51.100.1:18081/"), "hello-from-guest");

  await stack.stopDaemon();
  await stack.startDaemon();
  assert.equal(await get(ns, "http://127.0.0.1:18080/"), "hello-from-guest", "after a daemon restart");
  assert.equal(await get(outside, "http://198.51.100.1:18081/"), "hello-from-guest");

  // Live changes on a running VM; a host socket on a port is named in the refusal.
  await cliOk(stack, ["vm", "port", "rm", "pa", "18080"]);
  assert.match(await get(ns, "http://127.0.0.1:18080/"), /^FAILED/);
  assert.equal(await get(outside, "http://198.51.100.1:18081/"), "hello-from-guest");
  await cliOk(stack, ["vm", "port", "add", "pa", "18082:80"]);
  assert.equal(await get(ns, "http://127.0.0.1:18082/"), "hello-from-guest");
  const server = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", `require("net").createServer().listen(18083,"127.0.0.1",()=>console.log("up"))`], { stdio: ["ignore", "pipe", "ignore"] });
  cleanup.push("host server", () => { server.kill("SIGKILL"); return Promise.resolve(); });
  await new Promise((r) => server.stdout.once("data", r));
  const busy = await stack.cli(["vm", "port", "add", "pa", "18083:80"]);
  assert.notEqual(busy.code, 0);
  assert.match(busy.stderr, /127\.0\.0\.1:18083\/tcp is already in use on the host by node \(pid \d+\)/);
  assert.doesNotMatch(await cliOk(stack, ["vm", "port", "ls", "pa"]), /18083/, "a refused port is not kept on record");

  await cliOk(stack, ["vm", "rm", "--force", "pa"]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing of the VM or its ports is left on the host");
});
