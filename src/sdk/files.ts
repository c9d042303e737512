import type { Readable } from "node:stream";
import type { Input } from "./exec.js";
import type { FileEntry } from "./wire-types.js";

/** Files in a VM, streamed over the daemon's exec channel. Paths are absolute guest paths. */
export interface VmFiles {
  /** The file's bytes as a stream (async-iterable); a missing file errors the stream with a BangerError. */
  read(path: string): Readable;
  readText(path: string): Promise<string>;
  /** Creates or truncates the file; resolves once the guest has every byte. `mode` e.g. 0o755. */
  write(path: string, data: Input, opts?: { readonly mode?: number }): Promise<void>;
  /** A directory's entries (a file lists itself). */
  list(path: string): Promise<FileEntry[]>;
  /** Removes a file, or a tree with `recursive`. A missing path is `not_found`. */
  remove(path: string, opts?: { readonly recursive?: boolean }): Promise<void>;
}
