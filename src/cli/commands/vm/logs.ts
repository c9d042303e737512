import { UsageError, type Command } from "../../command.js";
import { parseFlags, type FlagTable } from "../../flags.js";

const LOGS_FLAGS = {
  follow: { type: "boolean", short: "f", description: "keep printing as the log grows, until the VM stops or Ctrl-C" },
  tail: { type: "string", value: "BYTES", description: "start this many bytes before the end", default: "the whole log" },
  json: { type: "boolean", description: "print JSON lines, one per chunk read: {name, state, offset, next_offset, size, text}" },
} as const satisfies FlagTable;

export interface LogsDeps {
  readonly sleep: (ms: number) => Promise<void>;
  /** Stops -f (SIGINT in the real CLI). */
  readonly stopSignal: AbortSignal | undefined;
}

function isStopped(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

/** States in which the console log can still grow; in any other, -f has printed everything and ends (as `docker logs -f` does). */
const LIVE_STATES = new Set(["creating", "starting", "running", "stopping"]);

export function makeVmLogsCommand(deps: LogsDeps = { sleep: (ms) => new Promise((r) => setTimeout(r, ms)), stopSignal: undefined }): Command {
  return {
    path: ["vm", "logs"],
    summary: "print a VM's console log; --tail N starts at the last N lines; -f follows it until the VM stops",
    usage: "banger vm logs NAME [-f] [--tail LINES] [--json]",
    flags: LOGS_FLAGS,
    examples: ["banger vm logs web", "banger vm logs -f --tail 200 web"],
    completes: "vm",
    async run(args, ctx) {
      const { values, positionals } = parseFlags(LOGS_FLAGS, args);
      if (positionals.length !== 1) throw new UsageError("give exactly one VM name");
      const name = positionals[0] ?? "";
      if (values.tail !== undefined && !/^[1-9][0-9]{0,4}$/.test(values.tail)) throw new UsageError(`--tail takes a number of lines from 1 to 99999, e.g. --tail 200; got ${JSON.stringify(values.tail)}`);
      let stop = deps.stopSignal;
      let onSigint: (() => void) | undefined;
      if (stop === undefined && values.follow === true) {
        const ac = new AbortController();
        onSigint = () => { ac.abort(); };
        process.once("SIGINT", onSigint);
        stop = ac.signal;
      }
      try {
        let chunk = await ctx.call("vm.logs", { name, ...(values.tail !== undefined ? { tail_lines: Number(values.tail) } : {}) });
        for (;;) {
          const text = Buffer.from(chunk.data, "base64").toString("utf8");
          if (values.json === true) ctx.stdout.write(`${JSON.stringify({ name, state: chunk.state, offset: chunk.offset, next_offset: chunk.next_offset, size: chunk.size, text })}\n`);
          else if (text !== "") ctx.stdout.write(text);
          const more = chunk.next_offset < chunk.size;
          if (!more && values.follow !== true) return 0;
          if (!more) {
            if (isStopped(stop) || !LIVE_STATES.has(chunk.state)) return 0;
            await deps.sleep(500);
            if (isStopped(stop)) return 0;
          }
          chunk = await ctx.call("vm.logs", { name, offset: chunk.next_offset });
        }
      } finally {
        if (onSigint !== undefined) process.removeListener("SIGINT", onSigint);
      }
    },
  };
}

export const vmLogsCommand = makeVmLogsCommand();
