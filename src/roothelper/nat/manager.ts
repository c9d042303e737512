import type { IpForward } from "./ip-forward.js";
import type { NatBackend, NatGuest, NatState } from "./types.js";

export interface NatStatus {
  readonly backend: NatBackend["kind"] | null;
  readonly guests: readonly NatGuest[];
  readonly ipForwardOwned: boolean;
}

/**
 * Per-guest NAT on top of a backend. Operations are serialized with an
 * in-process lock (the helper is one process), so "is this the last guest?"
 * and "is the table there?" are never raced. banger's table/chains exist only
 * while at least one guest is enabled: removing the last guest removes them
 * (and turns ip_forward back off if banger turned it on), so the host's
 * ruleset is identical before the first VM and after the last one.
 */
export class NatManager {
  private queue: Promise<unknown> = Promise.resolve();
  private chosen: NatBackend | undefined;
  /**
   * What this process last installed or read, while banger's table is known to exist. Every change
   * goes through this (locked) manager, so it is exact unless someone edits the ruleset by hand; it
   * saves reading the ruleset back (a second nft fork) when a VM's guest is added. Anything it could
   * get wrong falls back to a fresh read: adding into a table that is gone fails, and removals and
   * no-op answers are always decided from the live ruleset.
   */
  private known: NatState | undefined;
  /**
   * New guests waiting to be added in one tool run: VMs created together ask within milliseconds
   * of each other, and each nft run costs a process. The batch closes when its run starts.
   */
  private batch: { readonly guests: NatGuest[]; readonly run: Promise<boolean> } | undefined;

  constructor(
    private readonly backends: readonly NatBackend[],
    private readonly preference: "auto" | NatBackend["kind"],
    private readonly ipForward: IpForward,
    private readonly bridge: () => string,
  ) {}

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** The configured backend, or in auto mode the first one whose tool works. */
  async backend(): Promise<NatBackend> {
    if (this.chosen !== undefined) return this.chosen;
    const candidates = this.preference === "auto" ? this.backends : this.backends.filter((b) => b.kind === this.preference);
    for (const b of candidates) {
      if (await b.available()) {
        this.chosen = b;
        return b;
      }
    }
    const tried = candidates.map((b) => b.kind).join(", ");
    throw new Error(`no working NAT backend (tried ${tried}); install nftables (or iptables) or set network.nat = false`);
  }

  /** Returns whether anything changed. */
  enable(guest: NatGuest): Promise<{ changed: boolean; ipForwardOwned: boolean }> {
    const known = this.known;
    const batched = this.batch?.guests.some((g) => g.ip === guest.ip) === true;
    if (known === undefined || batched || known.guests.some((g) => g.ip === guest.ip)) return this.locked(() => this.enableNow(guest));
    const batch = this.openBatch();
    batch.guests.push(guest);
    return batch.run.then(
      (ipForwardOwned) => ({ changed: true, ipForwardOwned }),
      // The table changed behind our back (e.g. a firewall reload flushed it): each guest looks again.
      () => this.locked(() => this.enableNow(guest)),
    );
  }

  private openBatch(): { readonly guests: NatGuest[]; readonly run: Promise<boolean> } {
    if (this.batch !== undefined) return this.batch;
    const guests: NatGuest[] = [];
    const run = this.locked(async () => {
      if (this.batch?.guests === guests) this.batch = undefined;
      const b = await this.backend();
      const known = this.known;
      if (known === undefined || guests.some((g) => known.guests.some((k) => k.ip === g.ip))) throw new Error("NAT state changed; adding one by one");
      try {
        await b.addGuests(this.bridge(), guests);
      } catch (e) {
        this.known = undefined;
        throw e;
      }
      this.known = { guests: [...known.guests, ...guests], ipForwardOwned: known.ipForwardOwned };
      return known.ipForwardOwned;
    });
    // Callers see the outcome through their own handlers; this copy must not count as unhandled.
    run.catch(() => undefined);
    this.batch = { guests, run };
    return this.batch;
  }

  /** enable(), decided from the live ruleset; runs under the lock. */
  private async enableNow(guest: NatGuest): Promise<{ changed: boolean; ipForwardOwned: boolean }> {
    const b = await this.backend();
    const st = await this.read(b);
    if (st === undefined) {
      const owned = !(await this.ipForward.get());
      if (owned) await this.ipForward.set(true);
      try {
        await b.create(this.bridge(), owned, guest);
      } catch (e) {
        // Leave the host as we found it: a half-created table/chain set and a forwarding switch nobody owns.
        const undo: unknown[] = [e];
        await b.removeAll().catch((u: unknown) => undo.push(u));
        if (owned) await this.ipForward.set(false).catch((u: unknown) => undo.push(u));
        throw undo.length === 1 ? e : new AggregateError(undo, `enabling NAT for ${guest.ip} failed`);
      }
      this.known = { guests: [guest], ipForwardOwned: owned };
      return { changed: true, ipForwardOwned: owned };
    }
    const existing = st.guests.find((g) => g.ip === guest.ip);
    if (existing !== undefined && existing.tap === guest.tap) return { changed: false, ipForwardOwned: st.ipForwardOwned };
    // Same IP behind another tap (e.g. a re-created VM): replace, so the recorded tap stays truthful.
    if (existing !== undefined) await b.removeGuest(guest.ip);
    await b.addGuests(this.bridge(), [guest]);
    this.known = { guests: [...st.guests.filter((g) => g.ip !== guest.ip), guest], ipForwardOwned: st.ipForwardOwned };
    return { changed: true, ipForwardOwned: st.ipForwardOwned };
  }

  disable(ip: string): Promise<{ changed: boolean; ipForwardOwned: boolean }> {
    return this.locked(async () => {
      const b = await this.backend();
      const st = await this.read(b);
      if (st === undefined) return { changed: false, ipForwardOwned: false };
      const present = st.guests.some((g) => g.ip === ip);
      const others = st.guests.filter((g) => g.ip !== ip);
      if (others.length > 0) {
        if (present) await b.removeGuest(ip);
        this.known = { guests: others, ipForwardOwned: st.ipForwardOwned };
        return { changed: present, ipForwardOwned: st.ipForwardOwned };
      }
      await this.dropEverything(b, st.ipForwardOwned);
      return { changed: true, ipForwardOwned: st.ipForwardOwned };
    });
  }

  /** Removes banger's NAT from every backend (config may have changed since it was installed). */
  removeAll(): Promise<NatBackend["kind"][]> {
    return this.locked(async () => {
      this.known = undefined;
      const removed: NatBackend["kind"][] = [];
      const errors: unknown[] = [];
      let owned = false;
      for (const b of this.backends) {
        try {
          if (!(await b.available())) continue;
          const st = await b.state();
          if (st === undefined) continue;
          owned ||= st.ipForwardOwned;
          await b.removeAll();
          removed.push(b.kind);
        } catch (e) {
          errors.push(e);
        }
      }
      if (owned) await this.ipForward.set(false).catch((e: unknown) => errors.push(e));
      if (errors.length > 0) throw new AggregateError(errors, "removing banger's NAT failed");
      return removed;
    });
  }

  status(): Promise<NatStatus> {
    return this.locked(async () => {
      for (const b of this.backends) {
        if (!(await b.available())) continue;
        const st = await b.state();
        if (st !== undefined) return { backend: b.kind, guests: st.guests, ipForwardOwned: st.ipForwardOwned };
      }
      return { backend: null, guests: [], ipForwardOwned: false };
    });
  }

  /** The live ruleset's state; `known` follows it. */
  private async read(b: NatBackend): Promise<NatState | undefined> {
    this.known = undefined;
    const st = await b.state();
    this.known = st;
    return st;
  }

  private async dropEverything(b: NatBackend, ipForwardOwned: boolean): Promise<void> {
    this.known = undefined;
    const errors: unknown[] = [];
    await b.removeAll().catch((e: unknown) => errors.push(e));
    if (ipForwardOwned) await this.ipForward.set(false).catch((e: unknown) => errors.push(e));
    if (errors.length > 0) throw new AggregateError(errors, "removing banger's NAT failed");
  }
}
