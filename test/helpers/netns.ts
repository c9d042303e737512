import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { systemRunner, runText } from "../../src/system/runner.js";

/**
 * A throwaway network namespace for integration tests. Everything a test does
 * to links, routes and firewalls happens inside it, so the host's own network
 * is never touched; `destroy()` removes it (idempotent) even after failures.
 */
export interface NetNs {
  readonly name: string;
  /** argv prefix that runs a command inside the namespace. */
  exec(argv: readonly string[]): string[];
  run(argv: readonly string[]): Promise<string>;
  /**
   * Set a sysctl inside the namespace (`net.ipv4.ip_forward`, "0"). A new namespace copies the
   * host's IPv4 settings (net.core.devconf_inherit_init_net), so a test sets what it relies on.
   */
  sysctl(key: string, value: string): Promise<void>;
  destroy(): Promise<void>;
}

export async function createNetNs(prefix = "bgt"): Promise<NetNs> {
  const name = `${prefix}-${randomBytes(3).toString("hex")}`;
  await systemRunner.run(["ip", "netns", "add", name]);
  const exec = (argv: readonly string[]): string[] => ["ip", "netns", "exec", name, ...argv];
  await systemRunner.run(exec(["ip", "link", "set", "lo", "up"]));
  let destroyed = false;
  return {
    name,
    exec,
    run: (argv) => runText(systemRunner, exec(argv)),
    async sysctl(key, value) {
      if (!/^[a-z0-9_]+(\.[a-z0-9_-]+)+$/.test(key)) throw new Error(`not a sysctl name: ${key}`);
      const path = `/proc/sys/${key.replaceAll(".", "/")}`;
      await systemRunner.run(exec([process.execPath, "-e", "require('node:fs').writeFileSync(process.argv[1], process.argv[2])", path, value]));
    },
    async destroy() {
      if (destroyed) return;
      destroyed = true;
      // Processes still inside would keep the namespace alive; kill them first.
      const pids = await runText(systemRunner, ["ip", "netns", "pids", name]).catch(() => "");
      for (const pid of pids.split(/\s+/).filter((p) => p !== "")) {
        try { process.kill(Number(pid), "SIGKILL"); } catch { /* already gone */ }
      }
      await systemRunner.run(["ip", "netns", "del", name]).catch(() => undefined);
    },
  };
}

/**
 * A veth pair linking namespace `a` (or the host when undefined) to namespace `b`, with addresses.
 * Used to model "the internet" as another namespace that guests reach through NAT.
 */
export async function linkNamespaces(a: NetNs, b: NetNs, aAddr: string, bAddr: string): Promise<void> {
  const suffix = randomBytes(2).toString("hex");
  const va = `va${suffix}`;
  const vb = `vb${suffix}`;
  await a.run(["ip", "link", "add", va, "type", "veth", "peer", "name", vb]);
  await a.run(["ip", "link", "set", vb, "netns", b.name]);
  await a.run(["ip", "addr", "add", aAddr, "dev", va]);
  await a.run(["ip", "link", "set", va, "up"]);
  await b.run(["ip", "addr", "add", bAddr, "dev", vb]);
  await b.run(["ip", "link", "set", vb, "up"]);
}

/**
 * A TCP server in `inet` at 198.51.100.2:8080 that answers each client with the address it sees,
 * so a test can tell whether traffic arrived masqueraded. Resolves once it listens; killed by `t.after`.
 */
export async function startEchoAddressServer(inet: NetNs, t: { after: (fn: () => void) => void }, lifetimeMs = 120_000): Promise<void> {
  const source = `const s=require("net").createServer(c=>{c.end(c.remoteAddress+"\\n");});s.listen(8080,"198.51.100.2",()=>console.log("listening"));setTimeout(()=>process.exit(0),${lifetimeMs});`;
  const server = spawn("ip", ["netns", "exec", inet.name, process.execPath, "-e", source], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => { server.kill("SIGKILL"); });
  await new Promise<void>((resolve, reject) => {
    server.stdout.once("data", () => { resolve(); });
    server.once("exit", () => { reject(new Error("internet server exited")); });
  });
}

/**
 * A stand-in for the host's resolver, at 127.0.0.1:53 inside `ns` (UDP): every A query is answered
 * 198.51.100.77, anything else NOERROR with no answers. `asked` lists "NAME TYPE" per query seen, so
 * a test can tell what was forwarded to it. Killed by `t.after`; resolves once it listens.
 */
export async function startFakeUpstreamDns(ns: NetNs, t: { after: (fn: () => void) => void }): Promise<{ asked: string[] }> {
  const source = `const s=require("dgram").createSocket("udp4");
s.on("message",(q,r)=>{let p=12;const l=[];while(q[p]!==0){l.push(q.toString("ascii",p+1,p+1+q[p]));p+=q[p]+1;}p+=1;const type=q.readUInt16BE(p);
console.log(l.join(".")+" "+type);const h=Buffer.from(q.subarray(0,p+4));h.writeUInt16BE(0x8180|(q.readUInt16BE(2)&0x0100),2);h.writeUInt16BE(type===1?1:0,6);h.writeUInt32BE(0,8);
s.send(Buffer.concat([h,type===1?Buffer.from([0xc0,12,0,1,0,1,0,0,0,60,0,4,198,51,100,77]):Buffer.alloc(0)]),r.port,r.address);});
s.bind(53,"127.0.0.1",()=>console.log("listening"));`;
  const server = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", source], { stdio: ["ignore", "pipe", "ignore"] });
  t.after(() => { server.kill("SIGKILL"); });
  const asked: string[] = [];
  let buf = "";
  await new Promise<void>((resolve, reject) => {
    server.stdout.on("data", (c: Buffer) => {
      buf += c.toString("utf8");
      const lines = buf.split("\n");
      buf = lines.pop() ?? "";
      for (const line of lines) {
        if (line === "listening") resolve();
        else asked.push(line);
      }
    });
    server.once("exit", () => { reject(new Error("fake upstream DNS exited")); });
  });
  return { asked };
}
