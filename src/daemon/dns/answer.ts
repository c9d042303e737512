import dnsPacket from "dns-packet";

/** Answers are short-lived: a VM can be deleted and its name reused by another VM seconds later. */
export const RECORD_TTL_S = 5;
export const ZONE = "vm";

const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, REFUSED: 5 } as const;

/** Lower-case, no trailing dot: `Web.VM.` and `web.vm` are the same name. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * The whole DNS logic, as a pure function of the query bytes and the current
 * records (`name` without the `.vm` suffix -> IPv4). Returns the response
 * bytes, or undefined when the input must be dropped silently (undecodable
 * garbage, or a response packet, which must never be answered to avoid loops).
 *  - NAME.vm with a record: A -> the address; other types (AAAA, ANY, ...) -> NOERROR, no answers
 *  - other names under .vm (and the apex) -> NXDOMAIN (apex: NOERROR, empty)
 *  - anything outside .vm -> REFUSED (the server forwards those upstream instead when it has upstreams: forwardable)
 */
export function answerQuery(query: Buffer, lookup: (name: string) => string | undefined): Buffer | undefined {
  let req: dnsPacket.DecodedPacket;
  try {
    req = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  if (req.type !== "query") return undefined;
  const id = req.id ?? 0;
  const rd = (req.flags ?? 0) & dnsPacket.RECURSION_DESIRED;
  const question = req.questions?.[0];
  const reply = (rcode: number, answers: dnsPacket.Answer[] = [], authoritative = true): Buffer =>
    dnsPacket.encode({
      type: "response",
      id,
      flags: (authoritative ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | rd | rcode,
      questions: question === undefined ? [] : [question],
      answers,
    });
  if (question === undefined || (req.questions?.length ?? 0) !== 1 || ((req.flags ?? 0) >> 11) % 16 !== 0) return reply(RCODE.FORMERR, [], false);
  const name = normalizeName(question.name);
  if (name !== ZONE && !name.endsWith(`.${ZONE}`)) return reply(RCODE.REFUSED, [], false);
  if (name === ZONE) return reply(RCODE.NOERROR);
  const ip = lookup(name.slice(0, -(ZONE.length + 1)));
  if (ip === undefined) return reply(RCODE.NXDOMAIN);
  if (question.type !== "A") return reply(RCODE.NOERROR);
  return reply(RCODE.NOERROR, [{ type: "A", class: "IN", name: question.name, ttl: RECORD_TTL_S, data: ip }]);
}

/**
 * Whether `query` is a well-formed standard query for one name outside `.vm`:
 * what the server relays upstream rather than refusing. Everything else
 * (`.vm` names, garbage, responses, other opcodes) is answerQuery's.
 */
export function forwardable(query: Buffer): boolean {
  return forwardableName(query) !== undefined;
}

/** The (normalized) name of a forwardable query, else undefined. */
export function forwardableName(query: Buffer): string | undefined {
  let req: dnsPacket.DecodedPacket;
  try {
    req = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  const question = req.questions?.[0];
  if (req.type !== "query" || question === undefined || req.questions?.length !== 1 || ((req.flags ?? 0) >> 11) % 16 !== 0) return undefined;
  const name = normalizeName(question.name);
  return name !== ZONE && !name.endsWith(`.${ZONE}`) ? name : undefined;
}

function errorReply(query: Buffer, rcode: number): Buffer | undefined {
  let req: dnsPacket.DecodedPacket;
  try {
    req = dnsPacket.decode(query);
  } catch {
    return undefined;
  }
  return dnsPacket.encode({ type: "response", id: req.id ?? 0, flags: ((req.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | rcode, questions: req.questions ?? [], answers: [] });
}

/** SERVFAIL for a forwardable query no upstream answered: the client learns at once instead of timing out. */
export function serverFailure(query: Buffer): Buffer | undefined {
  return errorReply(query, RCODE.SERVFAIL);
}

/** REFUSED: a name the asking guest's egress policy does not allow is not relayed (it would be a way out). */
export function refused(query: Buffer): Buffer | undefined {
  return errorReply(query, RCODE.REFUSED);
}
