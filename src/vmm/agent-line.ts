import type { VmIdentity } from "../rpc/priv/agent.js";

/**
 * Line protocol v1 of the guest agent (docs/guest-agent.md). One request line, space-separated
 * key=value, every value matching an anchored pattern the agent re-checks on its side:
 *   banger-identity v=1 seq=N hostname=H mac=M ip=A prefix=P gateway=G dns=A[,A] time=S.NNNNNNNNN seed=HEX64 hostkey=B64
 * answered by `banger-ack seq=N ok` or `banger-ack seq=N error=WORD`.
 */

/** The name of the virtio-serial port the agent reads (qemu) and of the port the double maps vsock onto. */
export const AGENT_PORT_NAME = "org.banger.agent";
/** The vsock port the host CONNECTs to through Firecracker's hybrid vsock socket. */
export const AGENT_VSOCK_PORT = 52;

const IPV4 = "(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}";

/** The patterns of every field, unanchored (the agent's grep -Ex anchors them): the same text is used here and in the guest script. */
export const AGENT_FIELD_PATTERNS = {
  v: "1",
  seq: "[0-9]{1,10}",
  hostname: "[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
  mac: "[0-9a-f]{2}(:[0-9a-f]{2}){5}",
  ip: IPV4,
  prefix: "([8-9]|[12][0-9]|30)",
  gateway: IPV4,
  dns: `${IPV4}(,${IPV4}){0,2}`,
  time: "[0-9]{1,12}\\.[0-9]{9}",
  seed: "[0-9a-f]{64}",
  // No {m,n} bound: RE_DUP_MAX is 255 in the guests' regex engines; the helper bounds the whole line.
  hostkey: "[A-Za-z0-9+/]+={0,2}",
} as const;

export type AgentField = keyof typeof AGENT_FIELD_PATTERNS;

const anchored = Object.fromEntries(Object.entries(AGENT_FIELD_PATTERNS).map(([k, p]) => [k, new RegExp(`^(${p})$`)])) as Record<AgentField, RegExp>;

/** A field's value, refused with the field's name when it does not match its pattern. */
function field(name: AgentField, value: string): string {
  if (!anchored[name].test(value)) throw new Error(`${name}: ${JSON.stringify(value.slice(0, 80))} is not allowed in an agent request (must match ${AGENT_FIELD_PATTERNS[name]})`);
  return `${name}=${value}`;
}

/** What the helper adds to the owner's identity: its own sequence number, clock and randomness. */
export interface LineExtras {
  readonly seq: number;
  /** Wall clock at send, in nanoseconds since the epoch. */
  readonly timeNs: bigint;
  /** 32 random bytes, hex. */
  readonly seedHex: string;
}

/** The request line (with its newline) for `identity`; throws naming the first field that cannot be sent. */
export function composeIdentityLine(identity: VmIdentity, extras: LineExtras): string {
  if (identity.nameservers.length === 0) throw new Error("nameservers: at least one is needed");
  const time = `${extras.timeNs / 1_000_000_000n}.${String(extras.timeNs % 1_000_000_000n).padStart(9, "0")}`;
  const parts = [
    "banger-identity",
    field("v", "1"),
    field("seq", String(extras.seq)),
    field("hostname", identity.hostname),
    field("mac", identity.mac),
    field("ip", identity.ip),
    field("prefix", String(identity.prefix)),
    field("gateway", identity.gateway),
    field("dns", identity.nameservers.join(",")),
    field("time", time),
    field("seed", extras.seedHex),
    field("hostkey", identity.host_key_b64),
  ];
  return `${parts.join(" ")}\n`;
}

export type AgentAck = { readonly seq: number; readonly ok: true } | { readonly seq: number; readonly ok: false; readonly error: string };

/** An ack line (without its newline), or undefined for any other line (agent messages, garbage). */
export function parseAck(line: string): AgentAck | undefined {
  const m = /^banger-ack seq=([0-9]{1,10}) (ok|error=([a-z0-9_-]{1,40}))$/.exec(line.trim());
  if (m === null) return undefined;
  const seq = Number(m[1]);
  return m[3] === undefined ? { seq, ok: true } : { seq, ok: false, error: m[3] };
}

/**
 * Splits a byte stream into lines: `push` returns the complete lines so far and keeps the tail.
 * Bounded: a guest writing an endless line cannot grow the helper's memory.
 */
export class LineSplitter {
  private tail = "";
  constructor(private readonly maxLine = 4096) {}
  push(chunk: Buffer): string[] {
    const text = this.tail + chunk.toString("latin1");
    const lines = text.split("\n");
    this.tail = (lines.pop() ?? "").slice(-this.maxLine);
    return lines;
  }
}
