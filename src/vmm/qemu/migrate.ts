import { qmpExecute } from "./qmp.js";

/**
 * qemu's save/restore over QMP: a save is `migrate` to a unix socket the root helper listens on (it
 * writes the stream into the snapshot file by descriptor); a restore is a qemu started with
 * `-incoming fd:N -S`, loaded once `query-status` leaves `inmigrate`.
 */

/** `query-status`'s run state: "running", "paused", "inmigrate", "postmigrate", "prelaunch", ... */
export async function qmpRunState(socketPath: string, timeoutMs?: number): Promise<string> {
  const status = (await qmpExecute(socketPath, "query-status", undefined, timeoutMs)) as { status?: unknown };
  if (typeof status.status !== "string") throw new Error(`QMP query-status on ${socketPath} gave no status: ${JSON.stringify(status)}`);
  return status.status;
}

/**
 * Stopped guests a save accepts: `paused` (stop), and `postmigrate` (a guest saved before and not
 * resumed since; `cont` resumes it like a paused one).
 */
export const SAVABLE_STATES: readonly string[] = ["paused", "postmigrate"];

export interface MigrationProgress {
  /** "setup", "active", "completed", "failed", "cancelled", ... */
  readonly status: string;
  readonly error?: string | undefined;
}

export async function qmpQueryMigrate(socketPath: string, timeoutMs?: number): Promise<MigrationProgress> {
  const info = (await qmpExecute(socketPath, "query-migrate", undefined, timeoutMs)) as { status?: unknown; "error-desc"?: unknown };
  return { status: typeof info.status === "string" ? info.status : "none", error: typeof info["error-desc"] === "string" ? info["error-desc"] : undefined };
}

/**
 * Start migrating to `uri` and poll until it is completed; a failure or a timeout cancels it and
 * throws with qemu's reason. The guest stays stopped throughout (it was stopped before).
 */
export async function qmpMigrateAndWait(socketPath: string, uri: string, timeoutMs: number): Promise<void> {
  await qmpExecute(socketPath, "migrate", { uri });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await qmpQueryMigrate(socketPath);
    if (p.status === "completed") return;
    if (p.status === "failed" || p.status === "cancelled") throw new Error(`qemu's migration ${p.status}: ${p.error ?? "no reason given"}`);
    if (Date.now() > deadline) {
      await qmpExecute(socketPath, "migrate_cancel").catch(() => undefined);
      throw new Error(`qemu's migration did not complete within ${timeoutMs} ms (status ${p.status}); it was cancelled`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * After a qemu with `-incoming` started: wait (bounded) until it has loaded the state, i.e. left
 * `inmigrate`, and answer its run state (`paused` with -S). `failed()` says why when qemu exited (a
 * stream from another machine type, vcpu count or memory size makes it exit: its log says which).
 */
export async function waitIncomingLoaded(socketPath: string, isAlive: () => boolean, failed: () => string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = "inmigrate";
  for (let stepMs = 5; Date.now() < deadline; stepMs = Math.min(50, stepMs * 1.5)) {
    if (!isAlive()) throw new Error(`qemu exited while loading the saved state: ${failed()}`);
    try {
      last = await qmpRunState(socketPath, 2000);
    } catch (e) {
      // A qemu that dies mid-load closes the monitor first: report why it died, not the closed socket.
      if (!isAlive()) throw new Error(`qemu exited while loading the saved state: ${failed()}`, { cause: e });
      throw e;
    }
    if (last !== "inmigrate") return last;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`qemu did not finish loading the saved state within ${timeoutMs} ms (still ${last})`);
}
