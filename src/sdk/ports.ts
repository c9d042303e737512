import { DEFAULT_PORT_HOST_IP, parsePortSpec } from "../model/port-spec.js";
import { BangerError } from "./errors.js";
import type { PublishedPort } from "./wire-types.js";

/**
 * A port to publish: `"8080:80"`, `"127.0.0.1:8080:80/udp"` (the CLI's `-p` syntax), or the
 * fields. The host address defaults to 127.0.0.1 (this host only), the protocol to tcp.
 */
export type PortMapping = string | { readonly hostPort: number; readonly guestPort: number; readonly hostIp?: string; readonly proto?: "tcp" | "udp" };

/** Mappings as the daemon takes them; a malformed string is a bad_params error saying what a good one looks like. */
export function portsParam(mappings: readonly PortMapping[], opId: string): PublishedPort[] {
  return mappings.map((m) => {
    if (typeof m !== "string") return { host_ip: m.hostIp ?? DEFAULT_PORT_HOST_IP, host_port: m.hostPort, guest_port: m.guestPort, proto: m.proto ?? "tcp" };
    const spec = parsePortSpec(m);
    if (typeof spec === "string") throw new BangerError("bad_params", spec, opId);
    return { host_ip: spec.hostIp, host_port: spec.hostPort, guest_port: spec.guestPort, proto: spec.proto };
  });
}
