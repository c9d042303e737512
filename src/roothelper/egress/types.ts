/** What one guest's registration asks for (validated by the method before it gets here). */
export interface EgressGuest {
  readonly ip: string;
  readonly tap: string;
  readonly mode: "all" | "none" | "allow";
  /** `a.b.c.d/n`, host bits clear; only with mode allow. */
  readonly cidrs: readonly string[];
  readonly isolate: boolean;
}

/** One address banger's DNS resolved for an allowed name. */
export interface LearnedAddr {
  readonly ip: string;
  readonly ttlS: number;
}

/** banger's egress tables as read back: every element, per set. */
export interface EgressRuleset {
  /** Registered guests; the element comment records the tap and the mode. */
  readonly guests: readonly { readonly ip: string; readonly tap: string; readonly mode: EgressGuest["mode"] }[];
  readonly policed: readonly string[];
  /** guest . destination CIDR. */
  readonly allow: readonly (readonly [string, string])[];
  /** guest . address, with a timeout. */
  readonly learned: readonly (readonly [string, string])[];
  /** Bridge-family sets: taps whose source address is pinned, tap . address, isolated taps. */
  readonly ports: readonly string[];
  readonly bound: readonly (readonly [string, string])[];
  readonly isolated: readonly string[];
}

/** The host-side facts the rules are written from: all the helper's own config. */
export interface EgressHost {
  readonly bridge: string;
  readonly gateway: string;
  /** Where guests' DNS lands after the NAT table's redirect; undefined: no redirect (dns_listen port 0). */
  readonly dnsPort: number | undefined;
  /** network.protect_host: guests reach no host service but banger's DNS. */
  readonly protectHost: boolean;
}

/**
 * A firewall backend for egress. Callers serialize calls (EgressManager holds a lock), so the
 * ruleset a change is composed from is the live one. The nftables backend is built; an iptables one
 * (an ipset per set, ebtables for the bridge part) would implement the same methods.
 */
export interface EgressBackend {
  readonly kind: "nftables";
  /** undefined: banger's egress tables are not there. */
  read(): Promise<EgressRuleset | undefined>;
  /**
   * Makes `ip`'s registration `wanted` (undefined: none) in one transaction, creating the tables
   * when `current` is undefined; `forgetLearned` also drops what DNS taught the guest.
   */
  replaceGuest(host: EgressHost, current: EgressRuleset | undefined, ip: string, wanted: EgressGuest | undefined, forgetLearned: boolean): Promise<void>;
  /** Adds (or renews) learned addresses of a registered guest. */
  learn(ip: string, addrs: readonly LearnedAddr[]): Promise<void>;
  removeAll(): Promise<void>;
}
