import { createConnection } from "node:net";

/**
 * Minimal QMP client: connect, read the greeting, negotiate capabilities,
 * run ONE command, close. One connection per command keeps state out of the
 * daemon (a restarted daemon needs nothing but the socket path).
 */
export async function qmpExecute(socketPath: string, command: string, args?: Readonly<Record<string, unknown>>, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = "";
    let stage: "greeting" | "caps" | "command" = "greeting";
    const timer = setTimeout(() => { fail(new Error(`QMP ${command} on ${socketPath}: no answer within ${timeoutMs} ms`)); }, timeoutMs);
    const done = (): void => { clearTimeout(timer); sock.destroy(); };
    const fail = (e: Error): void => { done(); reject(e); };
    const send = (msg: unknown): void => { sock.write(JSON.stringify(msg) + "\n"); };
    sock.on("error", (e) => { fail(new Error(`QMP ${command} on ${socketPath}: ${e.message}`, { cause: e })); });
    sock.on("close", () => { fail(new Error(`QMP ${command} on ${socketPath}: connection closed before the answer`)); });
    sock.on("data", (chunk: Buffer) => {
      buf += chunk.toString("utf8");
      let nl;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line === "") continue;
        let msg: Record<string, unknown>;
        try {
          msg = JSON.parse(line) as Record<string, unknown>;
        } catch {
          fail(new Error(`QMP ${command}: unparseable line ${JSON.stringify(line.slice(0, 200))}`));
          return;
        }
        if ("event" in msg) continue; // asynchronous events interleave with replies
        if (stage === "greeting" && "QMP" in msg) {
          stage = "caps";
          send({ execute: "qmp_capabilities" });
        } else if ("error" in msg) {
          const err = msg["error"] as { desc?: string } | undefined;
          fail(new Error(`QMP ${stage === "caps" ? "qmp_capabilities" : command} failed: ${err?.desc ?? JSON.stringify(msg["error"])}`));
          return;
        } else if (stage === "caps" && "return" in msg) {
          stage = "command";
          send(args === undefined ? { execute: command } : { execute: command, arguments: args });
        } else if (stage === "command" && "return" in msg) {
          done();
          resolve(msg["return"]);
          return;
        }
      }
    });
  });
}

/** The guest's shutdown request: microvm has no ACPI power button, so press ctrl-alt-del on the i8042. */
export async function qmpCtrlAltDel(socketPath: string, timeoutMs?: number): Promise<void> {
  const keys = ["ctrl", "alt", "delete"].map((k) => ({ type: "qcode", data: k }));
  await qmpExecute(socketPath, "send-key", { keys }, timeoutMs);
}

/** Freeze (`stop`) or thaw (`cont`) the guest's vCPUs; answers whether it is paused afterwards (`query-status`). */
export async function qmpSetPaused(socketPath: string, paused: boolean, timeoutMs?: number): Promise<boolean> {
  await qmpExecute(socketPath, paused ? "stop" : "cont", undefined, timeoutMs);
  const status = (await qmpExecute(socketPath, "query-status", undefined, timeoutMs)) as { running?: unknown };
  if (typeof status.running !== "boolean") throw new Error(`QMP query-status on ${socketPath} gave no running flag: ${JSON.stringify(status)}`);
  return !status.running;
}
