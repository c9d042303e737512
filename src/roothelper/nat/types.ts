/** One guest whose traffic banger masquerades: keyed by IP, the tap is recorded for humans and audits. */
export interface NatGuest {
  readonly ip: string;
  readonly tap: string;
}

/** What a backend finds installed; `undefined` from `state()` means banger has nothing installed. */
export interface NatState {
  readonly guests: readonly NatGuest[];
  /** True when banger switched net.ipv4.ip_forward on and must switch it off again when the last guest goes. */
  readonly ipForwardOwned: boolean;
}

/**
 * A firewall backend. Every method touches only banger's own table/chains.
 * Callers serialize calls (NatManager holds a lock), so check-then-act is safe.
 */
export interface NatBackend {
  readonly kind: "nftables" | "iptables";
  /** Whether this backend's tool works here. */
  available(): Promise<boolean>;
  state(): Promise<NatState | undefined>;
  /** Installs banger's table/chains together with the first guest. */
  create(bridge: string, ipForwardOwned: boolean, guest: NatGuest): Promise<void>;
  /** Adds guests to an installed table/chains, all in one run where the tool allows (nft: one transaction). */
  addGuests(bridge: string, guests: readonly NatGuest[]): Promise<void>;
  removeGuest(ip: string): Promise<void>;
  /** Removes everything banger installed; a no-op when nothing is there. */
  removeAll(): Promise<void>;
}

/**
 * Guests' DNS: what they send to port 53 of the bridge address is redirected to banger's DNS
 * server, which the daemon (not root, so never on port 53) also binds on the bridge address at
 * `port`. Lives in the NAT table/chains, so it comes and goes with the guests banger NATs.
 */
export interface DnsRedirect {
  readonly gateway: string;
  readonly port: number;
}
