import { contextsFile, type Layout } from "../paths/paths.js";
import { sshDial } from "../rpc/ssh-dial.js";
import { unixDial, type Dial } from "../rpc/unix-client.js";
import { chooseContext, DEFAULT_CONTEXT, findContext, readContexts, type RemoteContext } from "./contexts.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface ResolvedContext {
  readonly name: string;
  /** Absent for the local daemon ("default"). */
  readonly remote?: RemoteContext;
  readonly dial: Dial;
}

/**
 * The daemon a CLI invocation (or an SDK client) talks to: --context, else BANGER_CONTEXT, else the
 * contexts file's current one, else the local socket. An unknown name is an error, never a silent
 * fall back to the local daemon.
 */
export function resolveContext(flag: string | undefined, layout: Layout, env: Env): ResolvedContext {
  const envValue = env["BANGER_CONTEXT"];
  // The common case, nothing chosen anywhere, still reads the file: `context use` is how it is chosen.
  const doc = readContexts(contextsFile(env));
  const { name, source } = chooseContext(flag, envValue, doc);
  const remote = findContext(doc, name, source);
  if (remote === undefined) return { name: DEFAULT_CONTEXT, dial: unixDial(layout.daemonSocket) };
  return { name, remote, dial: sshDial(name, remote.url) };
}

/** The SDK's way in (`Banger.connect({ dial: contextDial(name, layout, env) })`): a named context's Dial. */
export function contextDial(name: string, layout: Layout, env: Env = process.env): Dial {
  return resolveContext(name, layout, env).dial;
}
