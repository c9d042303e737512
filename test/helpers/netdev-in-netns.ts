import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { BridgeState } from "../../src/roothelper/netdev.js";
import type { NetNs } from "./netns.js";

/** dist/test/helpers/netdev-child.js, next to this compiled file. */
const CHILD = resolve(fileURLToPath(import.meta.url), "../netdev-child.js");

/** The real, ioctl-based LinkOps as seen from inside `ns`: each call runs in a child process there. */
export interface NetdevInNetns {
  exists(name: string): Promise<boolean>;
  bridgeState(bridge: string): Promise<BridgeState | null>;
  createTap(name: string, uid: number, gid: number): Promise<void>;
  attachUp(tap: string, bridge: string): Promise<void>;
}

/** A LinkOps call that failed in the namespace, with the message and errno code it threw there. */
export class NetdevError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
  }
}

export function netdevInNetns(ns: NetNs): NetdevInNetns {
  const call = async (op: string, ...args: (string | number)[]): Promise<unknown> => {
    const out = JSON.parse(await ns.run([process.execPath, CHILD, op, ...args.map(String)])) as { ok: true; value: unknown } | { ok: false; message: string; code?: string };
    if (!out.ok) throw new NetdevError(out.message, out.code);
    return out.value;
  };
  return {
    exists: async (name) => (await call("exists", name)) as boolean,
    bridgeState: async (bridge) => (await call("bridge-state", bridge)) as BridgeState | null,
    createTap: async (name, uid, gid) => { await call("create-tap", name, uid, gid); },
    attachUp: async (tap, bridge) => { await call("attach-up", tap, bridge); },
  };
}
