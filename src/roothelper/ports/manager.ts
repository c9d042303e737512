import { writeFile } from "node:fs/promises";
import { RpcError } from "../../rpc/errors.js";
import type { PortsBackend } from "./nftables.js";
import { portKey, type PublishedPort } from "./types.js";

export interface PortsManagerDeps {
  /** Refuses (RpcError) a host address:port a host socket holds. */
  readonly mustBeFree: (hostIp: string, port: number, proto: "tcp" | "udp") => Promise<void>;
  /** net.ipv4.conf.<bridge>.route_localnet (see nftables.ts for why). */
  readonly routeLocalnet: (bridge: string, on: boolean) => Promise<void>;
}

export function procRouteLocalnet(bridge: string, on: boolean): Promise<void> {
  return writeFile(`/proc/sys/net/ipv4/conf/${bridge}/route_localnet`, on ? "1\n" : "0\n");
}

const same = (a: PublishedPort, b: PublishedPort): boolean => portKey(a) === portKey(b) && a.guestIp === b.guestIp && a.guestPort === b.guestPort && a.tap === b.tap;

/**
 * Published ports of every guest, decided from the live ruleset under one in-process lock (the helper
 * is one process), so two VMs asking for the same host port are served one after the other and the
 * second sees the first's rule. The table exists only while something is published: the host's
 * ruleset (and the bridge's route_localnet) is as before once the last port goes.
 */
export class PortsManager {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly backend: PortsBackend, private readonly bridge: string, private readonly deps: PortsManagerDeps) {}

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  list(): Promise<PublishedPort[]> {
    return this.locked(async () => (await this.backend.list()) ?? []);
  }

  /** Makes `wanted` exactly what is published to `guestIp`. */
  set(guestIp: string, wanted: readonly PublishedPort[]): Promise<PublishedPort[]> {
    return this.locked(async () => {
      const seen = new Set<string>();
      for (const p of wanted) {
        if (seen.has(portKey(p))) throw new RpcError("bad_params", `ports: ${portKey(p)} is listed twice`);
        seen.add(portKey(p));
      }
      const current = await this.backend.list();
      const mine = (current ?? []).filter((p) => p.guestIp === guestIp);
      const others = (current ?? []).filter((p) => p.guestIp !== guestIp);
      for (const p of wanted) {
        const held = others.find((o) => portKey(o) === portKey(p));
        if (held !== undefined) throw new RpcError("conflict", `host port ${portKey(p)} is already published to ${held.guestIp}:${held.guestPort} (${held.tap || "no tap recorded"}); pick another host port or remove that one first`);
      }
      // Ports this guest already holds hold no socket: only new host ports need the bind test.
      for (const p of wanted) if (!mine.some((m) => portKey(m) === portKey(p))) await this.deps.mustBeFree(p.hostIp, p.hostPort, p.proto);
      const remove = mine.filter((m) => !wanted.some((w) => same(w, m)));
      const add = wanted.filter((w) => !mine.some((m) => same(w, m)));
      if (others.length === 0 && wanted.length === 0) {
        if (current !== undefined) {
          const errors: unknown[] = [];
          await this.backend.removeAll().catch((e: unknown) => errors.push(e));
          await this.deps.routeLocalnet(this.bridge, false).catch((e: unknown) => errors.push(e));
          if (errors.length > 0) throw new AggregateError(errors, `removing banger's published ports failed`);
        }
        return [];
      }
      if (add.length === 0 && remove.length === 0) return [...wanted];
      const create = current === undefined;
      if (create) await this.deps.routeLocalnet(this.bridge, true);
      try {
        await this.backend.change(this.bridge, create, add, remove);
      } catch (e) {
        // nft -f is one transaction: a failed create left no table, so the sysctl goes back too.
        if (create) await this.deps.routeLocalnet(this.bridge, false).catch(() => undefined);
        throw e;
      }
      return [...wanted];
    });
  }
}
