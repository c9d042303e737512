/** A published port as the owner asks for it: `[HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp]`. */
export interface PortSpec {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly guestPort: number;
  readonly proto: "tcp" | "udp";
}

/** Loopback unless said otherwise: a published port reachable from other hosts is a choice. */
export const DEFAULT_PORT_HOST_IP = "127.0.0.1";

const SPEC_RE = /^(?:((?:0|[1-9][0-9]{0,2})(?:\.(?:0|[1-9][0-9]{0,2})){3}):)?([1-9][0-9]{0,4}):([1-9][0-9]{0,4})(?:\/(tcp|udp))?$/;

/** The spec, or a sentence saying what is wrong with it and what a good one looks like. */
export function parsePortSpec(text: string): PortSpec | string {
  const m = SPEC_RE.exec(text);
  const usage = `want [HOST_IP:]HOST_PORT:GUEST_PORT[/tcp|/udp], e.g. 8080:80 or 192.0.2.10:8080:80/udp`;
  if (m === null) return `${JSON.stringify(text)} is not a port mapping; ${usage}`;
  const [, ip, host, guest, proto] = m;
  if (ip !== undefined && ip.split(".").some((o) => Number(o) > 255)) return `${JSON.stringify(text)}: ${ip} is not an IPv4 address`;
  if (ip === "0.0.0.0") return `${JSON.stringify(text)}: 0.0.0.0 is not supported; name the host address to publish on`;
  const hostPort = Number(host);
  const guestPort = Number(guest);
  if (hostPort > 65535 || guestPort > 65535) return `${JSON.stringify(text)}: ports are 1..65535`;
  return { hostIp: ip ?? DEFAULT_PORT_HOST_IP, hostPort, guestPort, proto: proto === "udp" ? "udp" : "tcp" };
}

export function formatPortSpec(p: PortSpec): string {
  return `${p.hostIp}:${p.hostPort}:${p.guestPort}/${p.proto}`;
}
