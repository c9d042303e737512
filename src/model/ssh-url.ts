/**
 * A remote context's address, `ssh://[user@]host[:port]`. Every part reaches the user's `ssh` as an
 * argv word, so each is held to an anchored pattern that admits no option (a leading `-`), no
 * whitespace, no `%` token expansion and nothing else ssh or the remote shell could read as syntax.
 */
export interface SshUrl {
  /** Absent: the user's ssh config (or login name) decides. */
  readonly user?: string;
  /** A host name, an alias from ~/.ssh/config, an IPv4 address, or an IPv6 address (without brackets). */
  readonly host: string;
  /** Absent: the user's ssh config (or 22) decides. */
  readonly port?: number;
}

const MAX_URL_LENGTH = 300;
const USER_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$/;
const HOST_RE = /^[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,252})$/;
const IPV6_RE = /^[0-9A-Fa-f:.]{2,45}$/;
const URL_RE = /^ssh:\/\/(?:([^@/?#\s]{1,32})@)?(\[[^\]/?#\s]{1,45}\]|[^:@/?#\s[\]]{1,253})(?::([0-9]{1,5}))?\/?$/;

const EXAMPLE = "ssh://user@host or ssh://user@host:2222";

/** The URL's parts, or a message saying what is wrong with it and what a good one looks like. */
export function parseSshUrl(text: string): SshUrl | string {
  if (text.length > MAX_URL_LENGTH) return `the address is longer than ${MAX_URL_LENGTH} characters; give ${EXAMPLE}`;
  const m = URL_RE.exec(text);
  if (m === null) return `${JSON.stringify(text)} is not an ssh address; give ${EXAMPLE}`;
  const [, user, rawHost = "", portText] = m;
  if (user !== undefined && !USER_RE.test(user)) return `user ${JSON.stringify(user)} in ${JSON.stringify(text)} is not a user name (letters, digits, . _ -, not starting with - or .)`;
  const bracketed = rawHost.startsWith("[");
  const host = bracketed ? rawHost.slice(1, -1) : rawHost;
  if (bracketed ? !IPV6_RE.test(host) || !host.includes(":") : !HOST_RE.test(host)) {
    return `host ${JSON.stringify(rawHost)} in ${JSON.stringify(text)} is not a host name or address (letters, digits, . _ -, not starting with - or .; IPv6 in [brackets])`;
  }
  let port: number | undefined;
  if (portText !== undefined) {
    port = Number(portText);
    if (port < 1 || port > 65535) return `port ${portText} in ${JSON.stringify(text)} is not a TCP port (1-65535)`;
  }
  return { host, ...(user !== undefined ? { user } : {}), ...(port !== undefined ? { port } : {}) };
}

/** The canonical text of an address (what `context ls` shows and the contexts file stores). */
export function formatSshUrl(url: SshUrl): string {
  const host = url.host.includes(":") ? `[${url.host}]` : url.host;
  return `ssh://${url.user !== undefined ? `${url.user}@` : ""}${host}${url.port !== undefined ? `:${url.port}` : ""}`;
}

/** ssh's own words for the address: `-p PORT` (when given) and the destination, to follow `--`. */
export function sshDestination(url: SshUrl): { options: string[]; destination: string } {
  return {
    options: url.port !== undefined ? ["-p", String(url.port)] : [],
    destination: url.user !== undefined ? `${url.user}@${url.host}` : url.host,
  };
}
