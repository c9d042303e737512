/** Outbound network policy for a VM: everything, nothing but banger's DNS, or only these IPv4 addresses, CIDRs and domains (a domain allows its subdomains). */
export type EgressPolicy = "all" | "none" | { readonly allow: readonly string[] };

/** A VM's policy as the daemon reports it, and whether it is cut off from the other VMs. */
export interface EgressState {
  readonly policy: EgressPolicy;
  readonly isolate: boolean;
}

/** The daemon's text form (`vm egress set` takes the same); the daemon validates each entry. */
export function egressText(p: EgressPolicy): string {
  return typeof p === "string" ? p : `allow=${p.allow.join(",")}`;
}

/** `vm.egress`: read or change the policy; on a running VM a change applies at once. */
export interface VmEgressApi {
  get(): Promise<EgressState>;
  set(change: { readonly policy?: EgressPolicy; readonly isolate?: boolean }): Promise<EgressState>;
}
