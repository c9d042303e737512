import { createServer, type Server } from "node:net";

/** Starts `server` on an ephemeral loopback port and resolves with the port. */
export function listenLocal(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const a = server.address();
      resolve(typeof a === "object" && a !== null ? a.port : 0);
    });
  });
}

/** A loopback port that was free a moment ago (for servers the test starts as separate processes). */
export async function freePort(): Promise<number> {
  const s = createServer();
  const port = await listenLocal(s);
  await new Promise((r) => s.close(r));
  return port;
}
