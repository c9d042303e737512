import { PassThrough, type Readable } from "node:stream";
import type * as ExecClient from "../rpc/exec-client.js";
import type { DaemonCaller } from "./client.js";
import { toBangerError } from "./errors.js";
import { inputStream } from "./exec.js";
import type { VmFiles } from "./files.js";

/** Loaded on use, as the CLI's vm exec and cp do: the frame codec costs every other command start-up. */
const channel = (): Promise<typeof ExecClient> => import("../rpc/exec-client.js");

export function vmFiles(client: DaemonCaller, name: string): VmFiles {
  const read = (path: string): Readable => {
    const out = new PassThrough();
    const opId = client.opId();
    channel().then((m) => {
      const src = m.readFile(client.dial, { name, path }, { opId });
      src.once("error", (e) => { out.destroy(toBangerError(e) as Error); });
      src.pipe(out);
    }, (e: unknown) => { out.destroy(e as Error); });
    return out;
  };
  const wrap = async <T>(p: Promise<T>): Promise<T> => {
    try {
      return await p;
    } catch (e) {
      throw toBangerError(e);
    }
  };
  return {
    read,
    async readText(path) {
      const chunks: Buffer[] = [];
      for await (const c of read(path)) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString("utf8");
    },
    write: (path, data, opts = {}) => wrap(channel().then((m) => m.writeFile(client.dial, { name, path, ...(opts.mode !== undefined ? { mode: opts.mode } : {}) }, inputStream(data), { opId: client.opId() }))),
    list: (path) => wrap(channel().then((m) => m.listFiles(client.dial, { name, path }, { opId: client.opId() }))),
    remove: (path, opts = {}) => wrap(channel().then((m) => m.removeFile(client.dial, { name, path, ...(opts.recursive !== undefined ? { recursive: opts.recursive } : {}) }, { opId: client.opId() }))),
  };
}
