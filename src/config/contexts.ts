import { mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";
import { formatSshUrl, parseSshUrl, type SshUrl } from "../model/ssh-url.js";
import { writeFileAtomic } from "../system/atomic-write.js";

/**
 * The user's remote contexts: names for other hosts' banger daemons, reached over the user's own ssh.
 * One JSON file, 0600 in a 0700 dir, rewritten whole and atomically. Parsed by hand (no zod): every
 * CLI invocation reads it to pick its daemon, and zod's load was most of the CLI's start-up.
 */
export interface RemoteContext {
  readonly name: string;
  readonly url: SshUrl;
}

export interface ContextsDoc {
  /** The context commands use when neither --context nor BANGER_CONTEXT names one; absent = "default". */
  readonly current?: string | undefined;
  readonly contexts: readonly RemoteContext[];
}

/** The local daemon: always there, never stored, cannot be added or removed. */
export const DEFAULT_CONTEXT = "default";
const NAME_RE = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const MAX_FILE_BYTES = 1024 * 1024;

/** undefined when `name` can name a context; otherwise what is wrong with it. */
export function contextNameProblem(name: string): string | undefined {
  if (!NAME_RE.test(name)) return `context name ${JSON.stringify(name)} must be lower-case letters, digits, - and _ (up to 63, starting with a letter or digit)`;
  return undefined;
}

export class ContextsFileError extends Error {
  override readonly name = "ContextsFileError";
}

/** The file's contexts; a missing file is no contexts. A damaged one is an error naming the file and the fix. */
export function readContexts(file: string): ContextsDoc {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { contexts: [] };
    throw new ContextsFileError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (text.length > MAX_FILE_BYTES) throw damaged(file, "larger than 1 MiB");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw damaged(file, "not JSON");
  }
  return parseDoc(doc, file);
}

function damaged(file: string, why: string): ContextsFileError {
  return new ContextsFileError(`${file} is damaged (${why}); fix or delete it, then add the contexts again with: banger context add NAME ssh://user@host`);
}

function parseDoc(doc: unknown, file: string): ContextsDoc {
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw damaged(file, "not a JSON object");
  const { current, contexts } = doc as { current?: unknown; contexts?: unknown };
  if (typeof contexts !== "object" || contexts === null || Array.isArray(contexts)) throw damaged(file, "\"contexts\" is not an object");
  const list: RemoteContext[] = [];
  for (const [name, entry] of Object.entries(contexts)) {
    if (contextNameProblem(name) !== undefined || name === DEFAULT_CONTEXT) throw damaged(file, `bad context name ${JSON.stringify(name)}`);
    const urlText = typeof entry === "object" && entry !== null ? (entry as { url?: unknown }).url : undefined;
    const url = typeof urlText === "string" ? parseSshUrl(urlText) : "no url";
    if (typeof url === "string") throw damaged(file, `context ${name}: ${url}`);
    list.push({ name, url });
  }
  if (current !== undefined && (typeof current !== "string" || !list.some((c) => c.name === current))) throw damaged(file, `"current" names no stored context`);
  return { ...(current !== undefined ? { current } : {}), contexts: list.sort((a, b) => a.name.localeCompare(b.name)) };
}

/** Writes the whole document: the dir 0700 (made if missing), the file 0600, by rename. */
export function writeContexts(file: string, doc: ContextsDoc): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const contexts = Object.fromEntries(doc.contexts.map((c) => [c.name, { url: formatSshUrl(c.url) }]));
  writeFileAtomic(file, JSON.stringify({ ...(doc.current !== undefined ? { current: doc.current } : {}), contexts }, null, 2) + "\n", 0o600);
}

/** Where a context choice came from, so messages can say how to change it. */
export type ContextSource = "flag" | "env" | "file" | "default";

/** --context wins, then BANGER_CONTEXT, then the file's current one, else the local daemon. */
export function chooseContext(flag: string | undefined, envValue: string | undefined, doc: ContextsDoc): { name: string; source: ContextSource } {
  if (flag !== undefined) return { name: flag, source: "flag" };
  if (envValue !== undefined && envValue !== "") return { name: envValue, source: "env" };
  if (doc.current !== undefined) return { name: doc.current, source: "file" };
  return { name: DEFAULT_CONTEXT, source: "default" };
}

/** The stored context by name (undefined for "default"); an unknown name is an error listing what exists. */
export function findContext(doc: ContextsDoc, name: string, source: ContextSource): RemoteContext | undefined {
  if (name === DEFAULT_CONTEXT) return undefined;
  const found = doc.contexts.find((c) => c.name === name);
  if (found !== undefined) return found;
  const how = source === "env" ? " (from BANGER_CONTEXT)" : source === "file" ? " (the current one)" : "";
  const known = [DEFAULT_CONTEXT, ...doc.contexts.map((c) => c.name)].join(", ");
  throw new ContextsFileError(`no context ${JSON.stringify(name)}${how}; known: ${known}. Add it with: banger context add ${contextNameProblem(name) === undefined ? name : "NAME"} ssh://user@host`);
}
