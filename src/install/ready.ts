import { setTimeout as sleep } from "node:timers/promises";
import { callUnix } from "../rpc/unix-client.js";
import type { InstallMetadata } from "./metadata.js";

/** What each service answers to its ping: the version it runs, or why it did not answer. */
export interface Reachability {
  readonly helper: { readonly version?: string | undefined; readonly error?: string | undefined };
  readonly daemon: { readonly version?: string | undefined; readonly error?: string | undefined };
}

async function ping(socket: string, method: string): Promise<{ version?: string; error?: string }> {
  try {
    const r = (await callUnix(socket, method, {}, { timeoutMs: 3_000 })) as { version?: unknown };
    return typeof r.version === "string" ? { version: r.version } : { error: "answered without a version" };
  } catch (e) {
    return { error: e instanceof Error ? e.message : String(e) };
  }
}

export async function reach(meta: InstallMetadata): Promise<Reachability> {
  const [helper, daemon] = await Promise.all([ping(meta.paths.helper_socket, "priv.ping"), ping(meta.paths.daemon_socket, "daemon.ping")]);
  return { helper, daemon };
}

/** Waits until `which` answers with `version`; throws naming what it last said. */
export async function waitUntilServing(meta: InstallMetadata, which: "helper" | "daemon", version: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: { version?: string; error?: string } = {};
  while (Date.now() < deadline) {
    last = which === "helper" ? await ping(meta.paths.helper_socket, "priv.ping") : await ping(meta.paths.daemon_socket, "daemon.ping");
    if (last.version === version) return;
    await sleep(100);
  }
  throw new Error(`${which === "helper" ? "bangerd-root" : "bangerd"} did not answer as version ${version} within ${timeoutMs / 1000}s (${last.error ?? `it runs ${last.version ?? "?"}`})`);
}
