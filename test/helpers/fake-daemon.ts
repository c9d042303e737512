import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

/**
 * A stand-in bangerd on a temp unix socket: each request line gets the result `answer` gives
 * for its method (an error response when it returns undefined). For CLI tests that need a
 * daemon to talk to but not its behaviour.
 */
export async function fakeDaemon(t: { after(fn: () => void): void }, answer: (method: string, params: unknown) => unknown): Promise<{ dir: string; socket: string; methods: string[] }> {
  const dir = mkdtempSync("/tmp/bgt-faked-");
  const socket = join(dir, "bangerd.sock");
  const methods: string[] = [];
  const server = createServer((sock) => {
    let buf = "";
    sock.on("data", (d: Buffer) => {
      buf += d.toString("utf8");
      for (let nl = buf.indexOf("\n"); nl !== -1; nl = buf.indexOf("\n")) {
        const req = JSON.parse(buf.slice(0, nl)) as { method: string; params?: unknown; op_id?: string };
        buf = buf.slice(nl + 1);
        methods.push(req.method);
        const result = answer(req.method, req.params);
        sock.write(JSON.stringify(result === undefined ? { ok: false, error: { code: "unknown_method", message: `no ${req.method} here`, op_id: req.op_id } } : { ok: true, result }) + "\n");
      }
    });
    sock.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(socket, r));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, socket, methods };
}
