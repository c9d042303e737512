import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";
import { CleanupStack } from "../../../src/daemon/vm/steps.js";
import { createNetNs, linkNamespaces, type NetNs } from "../../helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { snapshotHost } from "../../helpers/snapshot.js";
import { startStack, type Stack } from "../../helpers/stack.js";
import { cliOk } from "../../helpers/tiny-stack.js";
import { ensureTestUser } from "../../helpers/users.js";

/*
 * Egress policy with a real guest (issue 18). The stack runs in its own namespace; an "internet"
 * namespace holds a test DNS zone (the daemon's upstream) at 198.51.100.2 and two web servers:
 * www.allowed.test's address 198.51.100.4 and another address, 198.51.100.3. The host namespace
 * serves on every address (the bridge address included) and on 169.254.169.254.
 */

const SKIP = requires(needsRoot(), needsCommands("qemu-system-x86_64", "busybox", "dropbear", "mkfs.ext4", "setpriv", "nft", "nsenter", "unshare"));
const CIDR_PREFIX = "172.16.97";
const GATEWAY = `${CIDR_PREFIX}.1`;

/** A node program in `ns`, killed by cleanup; resolves once it prints its first line. */
async function runServer(ns: NetNs, cleanup: CleanupStack, label: string, source: string): Promise<void> {
  // cwd: the checkout, so the zone server finds dns-packet in node_modules.
  const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", source], { stdio: ["ignore", "pipe", "inherit"], cwd: process.cwd() });
  cleanup.push(label, () => { p.kill("SIGKILL"); return Promise.resolve(); });
  await new Promise<void>((resolve, reject) => {
    p.stdout.once("data", () => { resolve(); });
    p.once("exit", (code) => { reject(new Error(`${label} exited (${String(code)})`)); });
  });
}

const web = (host: string, port: number, body: string): string =>
  `require("http").createServer((q,r)=>r.end(${JSON.stringify(body)}+"\\n")).listen(${port},${JSON.stringify(host)},()=>console.log("up"))`;

/** A one-zone authoritative server: www.allowed.test and other.test, TTL 300; NXDOMAIN otherwise. */
const zone = `const p=require("dns-packet"),s=require("dgram").createSocket("udp4");const z={"www.allowed.test":"198.51.100.4","other.test":"198.51.100.3"};
s.on("message",(m,r)=>{let q;try{q=p.decode(m)}catch{return}const n=(q.questions?.[0]?.name??"").toLowerCase();const ip=z[n];
s.send(p.encode({type:"response",id:q.id,flags:p.AUTHORITATIVE_ANSWER|(ip===undefined?3:0),questions:q.questions,answers:ip===undefined||q.questions[0].type!=="A"?[]:[{type:"A",class:"IN",name:n,ttl:300,data:ip}]}),r.port,r.address)});
s.bind(53,"198.51.100.2",()=>console.log("up"))`;

/**
 * The body the guest gets from http://HOST:PORT/, or BLOCKED. busybox nc, not wget: the tiny
 * image's static busybox wget crashes (glibc NSS), nc and nslookup do not.
 */
const fetchIn = (stack: Stack, vm: string, host: string, port = 80): Promise<string> =>
  cliOk(stack, ["vm", "exec", vm, "--", "sh", "-c", `out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 6 nc ${host} ${port}); [ -n "$out" ] && echo "$out" | tail -n 1 || echo BLOCKED`]).then((s) => s.trim());
/** fetchIn of NAME's address as the guest's resolver (banger's DNS) answers it (BLOCKED when it does not). */
const fetchName = (stack: Stack, vm: string, name: string): Promise<string> =>
  cliOk(stack, ["vm", "exec", vm, "--", "sh", "-c", `ip=$(timeout 8 nslookup -type=a ${name} | sed -n 's/^Address: //p' | head -n 1); [ -n "$ip" ] && out=$(printf 'GET / HTTP/1.0\\r\\n\\r\\n' | timeout 6 nc "$ip" 80) && [ -n "$out" ] && echo "$out" | tail -n 1 || echo BLOCKED`]).then((s) => s.trim());
/** Whether `nslookup NAME [SERVER]` in the guest found an address. */
const resolves = async (stack: Stack, vm: string, name: string, server = ""): Promise<boolean> =>
  (await stack.cli(["vm", "exec", vm, "--", "sh", "-c", `timeout 8 nslookup -type=a ${name} ${server}`], { timeoutMs: 60_000 })).code === 0;

void test("egress (qemu, tiny guest): allow= a domain reaches its address only; live changes; none keeps banger's DNS; other resolvers, host services and 169.254.169.254 are out of reach; nothing left", { skip: SKIP, timeout: 1_200_000 }, async (t) => {
  const user = await ensureTestUser();
  const cleanup = new CleanupStack();
  t.after(() => cleanup.run());
  const ns = await createNetNs("bgt-egress");
  cleanup.push("netns", () => ns.destroy());
  const inet = await createNetNs("bgt-egress-i");
  cleanup.push("internet netns", () => inet.destroy());
  await linkNamespaces(ns, inet, "198.51.100.1/24", "198.51.100.2/24");
  const link = (await inet.run(["ip", "-o", "-4", "addr", "show", "to", "198.51.100.2"])).split(/\s+/)[1] ?? "";
  for (const a of ["198.51.100.3/24", "198.51.100.4/24"]) await inet.run(["ip", "addr", "add", a, "dev", link]);
  await runServer(inet, cleanup, "zone", zone);
  await runServer(inet, cleanup, "allowed site", web("198.51.100.4", 80, "allowed-site"));
  await runServer(inet, cleanup, "other site", web("198.51.100.3", 80, "other-site"));
  // The host's own services: every address (the bridge's included) and a metadata-style address.
  await ns.run(["ip", "addr", "add", "169.254.169.254/32", "dev", "lo"]);
  await runServer(ns, cleanup, "host service", web("0.0.0.0", 7000, "host-service"));
  await runServer(ns, cleanup, "metadata", web("169.254.169.254", 80, "metadata"));

  const stack = await startStack({
    user,
    netns: ns,
    config: `[network]\nbridge = "bgeg0"\ncidr = "${CIDR_PREFIX}.0/24"\ndns_listen = "127.0.0.1:10057"\nupstream_dns = ["198.51.100.2"]\n[vmm]\nkind = "qemu"\naccel = "tcg"\n[defaults]\nmemory_mib = 256\nvcpus = 1\ndisk_gib = 1\n`,
  });
  cleanup.push("stack", async () => {
    await stack.cli(["vm", "rm", "--force", "eg"]).catch(() => undefined);
    await stack.stop();
  });
  await cliOk(stack, ["image", "build", "--name", "tiny", "--from", "busybox"]);
  // The bridge outlives VMs by design: the host as a first VM leaves it is what the last must leave.
  await cliOk(stack, ["vm", "run", "--rm", "--image", "tiny", "--", "true"], 600_000);
  const before = await snapshotHost(ns, stack);

  const bad = await stack.cli(["vm", "create", "--image", "tiny", "--name", "eg", "--egress", "allow=allowed.test,10.1.2.3/8"]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /--egress: "10\.1\.2\.3\/8" has bits set beyond its \/8 prefix; did you mean 10\.0\.0\.0\/8\?/);
  assert.notEqual((await stack.cli(["vm", "show", "eg"])).code, 0, "a usage error creates nothing");

  await cliOk(stack, ["vm", "create", "--image", "tiny", "--name", "eg", "--egress", "allow=allowed.test"], 600_000);
  const shown = JSON.parse(await cliOk(stack, ["vm", "show", "eg", "--json"])) as { egress: { policy: string; isolate: boolean } };
  assert.deepEqual(shown.egress, { policy: "allow=allowed.test", isolate: false });
  assert.equal(await fetchName(stack, "eg", "www.allowed.test"), "allowed-site", "a subdomain of the allowed domain, through banger's DNS");
  assert.equal(await fetchIn(stack, "eg", "198.51.100.3"), "BLOCKED", "another address in the same namespace");
  assert.equal(await resolves(stack, "eg", "other.test"), false, "banger's DNS does not relay names the policy does not allow");
  assert.equal(await resolves(stack, "eg", "www.allowed.test", "198.51.100.2"), false, "another DNS server is unreachable under a policy");
  assert.equal(await fetchIn(stack, "eg", GATEWAY, 7000), "BLOCKED", "the host's service on the bridge address");
  assert.equal(await fetchIn(stack, "eg", "169.254.169.254"), "BLOCKED", "169.254.169.254");

  // Live: an address instead of the domain.
  await cliOk(stack, ["vm", "egress", "set", "eg", "allow=198.51.100.3"]);
  assert.equal(await fetchIn(stack, "eg", "198.51.100.3"), "other-site");
  assert.equal(await fetchIn(stack, "eg", "198.51.100.4"), "BLOCKED", "what the domain taught the guest went with the old policy");

  // none: nothing but banger's DNS (its own names answer; nothing else is relayed or reachable).
  await cliOk(stack, ["vm", "egress", "set", "eg", "none"]);
  assert.equal(await fetchIn(stack, "eg", "198.51.100.3"), "BLOCKED");
  assert.equal(await resolves(stack, "eg", "eg.vm"), true, "banger's DNS still answers under none");
  assert.equal(await resolves(stack, "eg", "www.allowed.test"), false);

  // all: the internet and other resolvers again; the host's services stay out of reach.
  await cliOk(stack, ["vm", "egress", "set", "eg", "all"]);
  assert.equal(await fetchIn(stack, "eg", "198.51.100.3"), "other-site");
  assert.equal(await resolves(stack, "eg", "www.allowed.test", "198.51.100.2"), true, "another DNS server is reachable without a policy");
  assert.equal(await fetchIn(stack, "eg", GATEWAY, 7000), "BLOCKED", "host services are cut regardless of policy");
  assert.equal(await fetchIn(stack, "eg", "169.254.169.254"), "BLOCKED");

  // Kept across stop/start, applied again at start.
  await cliOk(stack, ["vm", "egress", "set", "eg", "allow=allowed.test"]);
  await cliOk(stack, ["vm", "stop", "eg"], 120_000);
  assert.doesNotMatch(await ns.run(["nft", "list", "tables"]), /banger_egress/, "the egress tables go with the last running guest");
  await cliOk(stack, ["vm", "start", "eg"], 600_000);
  assert.equal(await fetchIn(stack, "eg", "198.51.100.3"), "BLOCKED", "the recorded policy is back after vm start");
  assert.equal(await fetchName(stack, "eg", "www.allowed.test"), "allowed-site");

  await cliOk(stack, ["vm", "rm", "--force", "eg"]);
  assert.deepEqual(await snapshotHost(ns, stack), before, "nothing of the VM or its egress rules is left on the host");
});
