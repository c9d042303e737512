import { createSocket } from "node:dgram";
import { createServer } from "node:net";
import { RpcError } from "../../rpc/errors.js";
import type { Runner } from "../../system/runner.js";

/**
 * Whether a host socket already holds address:port, by binding it (and closing at once). Published
 * ports are DNAT rules that hold no socket, so a later server on the host could take the same port
 * too; this test only keeps a publish from shadowing a server that is there now. Done by the helper
 * (root, in the host's namespace), which is also why ports below 1024 can be published at all.
 */
export async function bindTest(hostIp: string, port: number, proto: "tcp" | "udp"): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    if (proto === "tcp") {
      const s = createServer();
      s.once("error", (e: NodeJS.ErrnoException) => { resolve(e); });
      s.listen({ host: hostIp, port, exclusive: true }, () => { s.close(() => { resolve(undefined); }); });
    } else {
      const s = createSocket({ type: "udp4" });
      s.once("error", (e: NodeJS.ErrnoException) => { s.close(); resolve(e); });
      s.bind({ address: hostIp, port, exclusive: true }, () => { s.close(() => { resolve(undefined); }); });
    }
  });
}

/** `users:(("nc",pid=123,fd=3))` of `ss -p` lines whose local address is addr:port or a wildcard on port. Exported for unit tests. */
export function holdersFromSs(text: string, hostIp: string, port: number): string[] {
  const out: string[] = [];
  for (const line of text.split("\n")) {
    const words = line.trim().split(/\s+/);
    const local = words.find((w) => w.endsWith(`:${port}`));
    if (local === undefined) continue;
    const addr = local.slice(0, local.lastIndexOf(":"));
    if (![hostIp, "0.0.0.0", "*", "[::]", "[::ffff:" + hostIp + "]"].includes(addr)) continue;
    for (const m of line.matchAll(/\("([^"]{1,64})",pid=([0-9]{1,10})/g)) out.push(`${m[1] ?? "?"} (pid ${m[2] ?? "?"})`);
    if (!/users:/.test(line)) out.push(`a socket on ${local}`);
  }
  return [...new Set(out)];
}

/** Refuses a host address:port a host socket holds, naming the process (from `ss`) where it can. */
export async function mustBeFree(runner: Runner, hostIp: string, port: number, proto: "tcp" | "udp"): Promise<void> {
  const e = await bindTest(hostIp, port, proto);
  if (e === undefined) return;
  const what = `${hostIp}:${port}/${proto}`;
  if (e.code === "EADDRNOTAVAIL") throw new RpcError("bad_params", `host_ip: ${hostIp} is not an address of this host; publish on 127.0.0.1 (the default) or one of the host's own addresses`);
  // EACCES: a port below 1024 under a service manager that withholds CAP_NET_BIND_SERVICE from the
  // helper (the installed unit does; forwarding needs no bind). Then the socket table alone decides.
  if (e.code !== "EADDRINUSE" && e.code !== "EACCES") throw new RpcError("operation_failed", `cannot check whether ${what} is free: ${e.message}`);
  let holders: string[] = [];
  try {
    const { stdout } = await runner.run(["ss", "-H", "-n", "-p", proto === "tcp" ? "-lt" : "-lu", "sport", "=", `:${port}`], { timeoutMs: 10_000 });
    holders = holdersFromSs(stdout.toString("utf8"), hostIp, port);
  } catch (listing) {
    // Naming the holder is a courtesy when the bind said the port is taken; without it nothing is known.
    if (e.code === "EACCES") throw new RpcError("operation_failed", `cannot check whether ${what} is free (binding it: ${e.message}; listing sockets: ${listing instanceof Error ? listing.message : String(listing)})`);
  }
  if (e.code === "EACCES" && holders.length === 0) return;
  throw new RpcError("conflict", `host port ${what} is already in use on the host${holders.length > 0 ? ` by ${holders.join(", ")}` : ""}; pick another host port or stop that server`);
}
