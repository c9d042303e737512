import { spawn } from "node:child_process";
import { privEnsureBridge, privEnsureNat } from "../src/rpc/priv/network.js";
import { privSetPorts } from "../src/rpc/priv/ports.js";
import { startHelperInNetns } from "../test/helpers/helper-in-netns.js";
import { createNetNs, type NetNs } from "../test/helpers/netns.js";
import { needsCommands, needsRoot, requires } from "../test/helpers/requirements.js";
import { median, round, type BenchResult } from "./stats.js";

const MIB = 256;
const PAIRS = 9;
const GUEST_IP = "172.16.94.2";
const TAP = "tap-fc-0000beef";

export function portForwardBenchSkip(): string | false {
  return requires(needsRoot(), needsCommands("ip", "nft", "ss"));
}

/** Sends MIB MiB to host:port from inside `ns`; resolves with MiB/s once the sink has counted every byte. */
function bulk(ns: NetNs, host: string, port: number): Promise<number> {
  const source = `const n=${MIB}*1048576,buf=Buffer.alloc(1<<20,120);const t0=process.hrtime.bigint();const c=require("net").connect({host:${JSON.stringify(host)},port:${port}},()=>{let left=n;const more=()=>{while(left>0){left-=buf.length;if(!c.write(buf)){c.once("drain",more);return;}}c.end();};more();});
c.on("data",d=>{if(d.toString().trim()!==String(n)){console.log("short "+d);process.exit(3);}console.log(${MIB}/(Number(process.hrtime.bigint()-t0)/1e9));process.exit(0);});c.on("error",e=>{console.log("ERR "+e.message);process.exit(4);});`;
  return new Promise((resolve, reject) => {
    const p = spawn("ip", ["netns", "exec", ns.name, process.execPath, "-e", source], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (c: Buffer) => { out += c.toString("utf8"); });
    p.on("close", (code) => { if (code === 0) resolve(Number(out.trim())); else reject(new Error(`bulk send to ${host}:${port} failed: ${out}`)); });
  });
}

/**
 * Bulk TCP through a published port (the host's loopback, DNAT in banger's nft table, route_localnet)
 * against the same transfer straight to the guest address, alternating, in one run. The "guest" is a
 * network namespace on the real helper's bridge through a veth named like a tap, with a sink that
 * counts bytes: a TCG guest would be the bottleneck of both paths and hide what forwarding costs.
 */
export async function benchPortForward(): Promise<Record<string, BenchResult>> {
  const host = await createNetNs("bgt-pfb-h");
  const guest = await createNetNs("bgt-pfb-g");
  const helper = await startHelperInNetns(host, { uid: 4242, gid: 4242 }, `[network]\nbridge = "bgtbr4"\ncidr = "172.16.94.0/24"\n`).catch(async (e: unknown) => {
    await Promise.allSettled([host.destroy(), guest.destroy()]);
    throw e;
  });
  const sink = spawn("ip", ["netns", "exec", guest.name, process.execPath, "-e", `require("net").createServer(c=>{let n=0;c.on("data",d=>{n+=d.length;});c.on("end",()=>c.end(String(n)));}).listen(80,${JSON.stringify(GUEST_IP)},()=>console.log("up"))`], { stdio: ["ignore", "pipe", "ignore"] });
  try {
    await helper.call(privEnsureBridge, {});
    await host.run(["ip", "link", "add", TAP, "type", "veth", "peer", "name", "bgtpfg"]);
    await host.run(["ip", "link", "set", "bgtpfg", "netns", guest.name]);
    await host.run(["ip", "link", "set", TAP, "master", "bgtbr4", "up"]);
    await guest.run(["ip", "addr", "add", `${GUEST_IP}/24`, "dev", "bgtpfg"]);
    await guest.run(["ip", "link", "set", "bgtpfg", "up"]);
    await helper.call(privEnsureNat, { guest_ip: GUEST_IP, tap: TAP, enable: true });
    await helper.call(privSetPorts, { guest_ip: GUEST_IP, tap: TAP, ports: [{ host_ip: "127.0.0.1", host_port: 18080, guest_port: 80, proto: "tcp" }] });
    await new Promise((r) => sink.stdout.once("data", r));
    await bulk(host, GUEST_IP, 80);
    const ratios: number[] = [];
    const published: number[] = [];
    const direct: number[] = [];
    for (let i = 0; i < PAIRS; i++) {
      // Alternate which goes first, so a drift in machine load does not favour one path.
      const order = i % 2 === 0 ? ["p", "d"] : ["d", "p"];
      const r: Record<string, number> = {};
      for (const which of order) r[which] = await bulk(host, which === "p" ? "127.0.0.1" : GUEST_IP, which === "p" ? 18080 : 80);
      published.push(r["p"] ?? NaN);
      direct.push(r["d"] ?? NaN);
      ratios.push((r["p"] ?? NaN) / (r["d"] ?? NaN));
    }
    return {
      port_forward_throughput_ratio: { value: round(median(ratios)), unit: `ratio: bulk TCP (${MIB} MiB) host 127.0.0.1 -> published port -> guest / host -> guest address directly, median of ${PAIRS} alternating pairs (published ${round(median(published), 0)} MiB/s, direct ${round(median(direct), 0)} MiB/s)`, target: 0.8, better: "higher" },
    };
  } finally {
    sink.kill("SIGKILL");
    await helper.call(privSetPorts, { guest_ip: GUEST_IP, tap: TAP, ports: [] }).catch(() => undefined);
    await helper.stop();
    await Promise.allSettled([host.destroy(), guest.destroy()]);
  }
}
