import { PassThrough, type Readable } from "node:stream";
import { listFiles, readFile, removeFile, writeFile } from "../rpc/exec-client.js";
import type { DaemonCaller } from "./client.js";
import { toBangerError } from "./errors.js";
import { inputStream } from "./exec.js";
import type { VmFiles } from "./files.js";

export function vmFiles(client: DaemonCaller, name: string): VmFiles {
  const read = (path: string): Readable => {
    const src = readFile(client.dial, { name, path }, { opId: client.opId() });
    const out = new PassThrough();
    src.once("error", (e) => { out.destroy(toBangerError(e) as Error); });
    return src.pipe(out);
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
    write: (path, data, opts = {}) => wrap(writeFile(client.dial, { name, path, ...(opts.mode !== undefined ? { mode: opts.mode } : {}) }, inputStream(data), { opId: client.opId() })),
    list: (path) => wrap(listFiles(client.dial, { name, path }, { opId: client.opId() })),
    remove: (path, opts = {}) => wrap(removeFile(client.dial, { name, path, ...(opts.recursive !== undefined ? { recursive: opts.recursive } : {}) }, { opId: client.opId() })),
  };
}
