import { ioctlLinks } from "../../src/roothelper/netdev.js";

/**
 * Runs one LinkOps call in this process and prints its outcome as a JSON line. Started by
 * netdev-in-netns.ts inside a test namespace: the ioctls act on the caller's namespace, so they
 * must run in a process that lives there, never in the test runner (which is in the host's).
 */
const [op, ...args] = process.argv.slice(2);
const arg = (i: number): string => args[i] ?? "";

function run(): unknown {
  switch (op) {
    case "exists": return ioctlLinks.exists(arg(0));
    case "bridge-state": return ioctlLinks.bridgeState(arg(0)) ?? null;
    case "create-tap": ioctlLinks.createTap(arg(0), Number(arg(1)), Number(arg(2))); return null;
    case "attach-up": ioctlLinks.attachUp(arg(0), arg(1)); return null;
    default: throw new Error(`unknown op ${String(op)}`);
  }
}

try {
  process.stdout.write(`${JSON.stringify({ ok: true, value: run() })}\n`);
} catch (e) {
  const err = e as NodeJS.ErrnoException;
  process.stdout.write(`${JSON.stringify({ ok: false, message: err.message, code: err.code })}\n`);
}
