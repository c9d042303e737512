import { VERSION } from "../version.js";
import { PROTOCOL_VERSION } from "./protocol.js";

/**
 * `banger system dial-stdio` (on a context's host) opens with this one line before it relays the
 * daemon's socket, so the client learns that banger is there at all and which protocol it speaks,
 * before a request is sent: "banger-dial-stdio PROTOCOL VERSION".
 */
const BANNER_WORD = "banger-dial-stdio";
const BANNER_RE = /^banger-dial-stdio ([0-9]{1,6}) ([0-9A-Za-z.+~-]{1,64})\r?$/;
/** A banner is short; more without a newline is something else talking. */
export const MAX_BANNER_BYTES = 256;

export function dialBanner(): string {
  return `${BANNER_WORD} ${PROTOCOL_VERSION} ${VERSION}\n`;
}

/** undefined when the remote's first line is a banner of this protocol; otherwise the error to show. */
export function bannerProblem(line: string, host: string): string | undefined {
  const m = BANNER_RE.exec(line);
  if (m === null) {
    const shown = line.length > 80 ? `${line.slice(0, 80)}...` : line;
    return `${host} did not answer as banger (its first line was ${JSON.stringify(shown)}); something in the remote login (a profile script printing text?) is in the way, or the banger there is not this one`;
  }
  const protocol = Number(m[1]);
  if (protocol !== PROTOCOL_VERSION) {
    return `banger ${m[2] ?? "?"} on ${host} speaks protocol ${protocol}, this banger ${VERSION} speaks protocol ${PROTOCOL_VERSION}; install the same banger version on both hosts`;
  }
  return undefined;
}
