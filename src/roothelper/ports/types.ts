/** One host address:port the kernel forwards to a guest; keyed by (hostIp, proto, hostPort). */
export interface PublishedPort {
  readonly hostIp: string;
  readonly hostPort: number;
  readonly proto: "tcp" | "udp";
  readonly guestIp: string;
  readonly guestPort: number;
  /** The guest's tap, recorded for humans and audits. */
  readonly tap: string;
}

export function portKey(p: Pick<PublishedPort, "hostIp" | "hostPort" | "proto">): string {
  return `${p.hostIp}:${p.hostPort}/${p.proto}`;
}
