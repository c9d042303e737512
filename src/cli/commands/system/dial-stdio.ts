import { connect } from "node:net";
import type { Readable, Writable } from "node:stream";
import { dialBanner } from "../../../rpc/dial-banner.js";
import { UsageError, type Command } from "../../command.js";
import { daemonDownHint } from "../../daemon-down.js";

export interface DialStdio {
  readonly stdin: Readable;
  readonly stdout: Writable;
}

/**
 * `banger system dial-stdio`: what a remote context's ssh runs on this host (like `docker system
 * dial-stdio`). One banner line (protocol and version), then this process's stdin and stdout are
 * relayed to and from the local daemon's socket until either side ends. Always the local daemon:
 * a context chosen here would only chain hosts.
 */
export function makeDialStdioCommand(io: () => DialStdio = () => ({ stdin: process.stdin, stdout: process.stdout })): Command {
  return {
    path: ["system", "dial-stdio"],
    hidden: true,
    local: true,
    summary: "relay stdin/stdout to the local daemon's socket (what remote contexts run over ssh)",
    usage: "banger system dial-stdio",
    run(args, ctx) {
      if (args.length > 0) throw new UsageError("takes no arguments");
      const { stdin, stdout } = io();
      stdout.write(dialBanner());
      return new Promise((resolve) => {
        const socket = connect(ctx.layout.daemonSocket);
        let failed = false;
        socket.on("error", (e: NodeJS.ErrnoException) => {
          failed = true;
          const why = e.code === "ENOENT" || e.code === "ECONNREFUSED" ? `the daemon is not running (nothing listens on ${ctx.layout.daemonSocket}); ${daemonDownHint(ctx.layout.installRoot !== undefined)}` : `cannot reach the daemon at ${ctx.layout.daemonSocket}: ${e.message}`;
          ctx.stderr.write(`${why}\n`);
        });
        stdin.pipe(socket);
        // Not ended with the socket: process.stdout is never closed by hand; the process's exit closes it.
        socket.pipe(stdout, { end: false });
        socket.on("close", () => {
          stdin.unpipe(socket);
          // Nothing more to relay: stop reading stdin so the process can exit.
          stdin.destroy();
          resolve(failed ? 1 : 0);
        });
      });
    },
  };
}

export const systemDialStdioCommand = makeDialStdioCommand();
