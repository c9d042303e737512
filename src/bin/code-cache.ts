import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { Script } from "node:vm";

/**
 * Runs a CommonJS bundle from V8's code cache: the compiled bytecode of the functions a command
 * runs, so start-up neither parses the 100+ KB bundle nor compiles those functions again (~4 ms
 * of `banger vm list`'s ~45 ms here). Node 20 has no `module.enableCompileCache`, so this does what
 * it would with `vm.Script`'s `cachedData`.
 *
 * The cache file is written at build time next to the bundle (scripts/cli-code-cache.mjs) and is
 * installed with it, so it has the bundle's owner and trust. It holds a copy of the bundle's bytes
 * ahead of V8's data: V8 itself only checks the source's length, and a bundle edited to a same-length
 * text (a version bump) must not run the old bytecode. Any mismatch, a V8 or flag change (V8 rejects
 * the data), or a missing file just compiles the source as Node would.
 *
 * Layout: "BCC1", u32 LE source length, the source bytes, V8's cached data.
 */
const MAGIC = Buffer.from("BCC1", "latin1");
const HEADER = MAGIC.length + 4;

/** The wrapper Node puts around a CommonJS module, so the bundle sees the usual five bindings. */
function wrap(source: string): string {
  return `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
}

export interface LoadedBundle {
  readonly script: Script;
  /** Whether V8 took the cache (false: none, stale, or rejected). */
  readonly cached: boolean;
  /** Executes the bundle as a module once; returns its exports. */
  run(): unknown;
}

function cachedDataFor(source: Buffer, cachePath: string): Buffer | undefined {
  let file: Buffer;
  try {
    file = readFileSync(cachePath);
  } catch {
    return undefined;
  }
  if (file.length < HEADER || !file.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const length = file.readUInt32LE(MAGIC.length);
  if (length !== source.length || file.length <= HEADER + length) return undefined;
  if (!file.subarray(HEADER, HEADER + length).equals(source)) return undefined;
  return file.subarray(HEADER + length);
}

/** Compiles `bundlePath` with the cache at `cachePath` when it matches. */
export function loadBundle(bundlePath: string, cachePath: string): LoadedBundle {
  const bytes = readFileSync(bundlePath);
  const cachedData = cachedDataFor(bytes, cachePath);
  // The bundles are ASCII (esbuild escapes the rest), so their bytes are their text.
  const script = new Script(wrap(bytes.toString("latin1")), { filename: bundlePath, ...(cachedData === undefined ? {} : { cachedData }) });
  const req = createRequire(bundlePath);
  return {
    script,
    cached: cachedData !== undefined && !script.cachedDataRejected,
    run() {
      const module = { exports: {} as unknown };
      (script.runInThisContext() as (e: unknown, r: NodeJS.Require, m: unknown, f: string, d: string) => void)(module.exports, req, module, bundlePath, dirname(bundlePath));
      return module.exports;
    },
  };
}

/** The cache file for `source` (the bundle's bytes) holding `data` (`script.createCachedData()`). */
export function cacheFileContents(source: Buffer, data: Buffer): Buffer {
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header);
  header.writeUInt32LE(source.length, MAGIC.length);
  return Buffer.concat([header, source, data]);
}
