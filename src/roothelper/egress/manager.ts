import { RpcError } from "../../rpc/errors.js";
import type { EgressBackend, EgressGuest, EgressHost, EgressRuleset, LearnedAddr } from "./types.js";

/** A registered guest as read back from the live ruleset. */
export interface EgressGuestState extends EgressGuest {
  readonly learned: number;
}

export function guestsOf(r: EgressRuleset): EgressGuestState[] {
  return r.guests.map((g) => {
    const cidrs = r.allow.filter(([ip]) => ip === g.ip).map(([, c]) => c);
    const learned = r.learned.filter(([ip]) => ip === g.ip).length;
    // The recorded mode says what was asked; membership of `policed` is what is enforced.
    const mode = r.policed.includes(g.ip) ? (g.mode === "all" ? "none" : g.mode) : "all";
    return { ip: g.ip, tap: g.tap, mode, cidrs, isolate: r.isolated.includes(g.tap), learned };
  });
}

/**
 * Egress registrations of every guest, decided from the live ruleset under one in-process lock
 * (the helper is one process). The tables exist only while a guest is registered: the host's
 * ruleset is as before once the last one goes.
 */
export class EgressManager {
  private queue: Promise<unknown> = Promise.resolve();
  /**
   * Guests this process last registered with `allow`. learn() runs while banger's DNS holds a
   * guest's answer back, so it spares the ruleset read (two nft forks) for them; anyone else is
   * looked up live (e.g. after a helper restart). A guest whose registration went behind our back
   * only gets learned elements the policy rule ignores.
   */
  private readonly allowing = new Set<string>();

  constructor(private readonly backend: EgressBackend, private readonly host: EgressHost) {}

  private locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  list(): Promise<EgressGuestState[]> {
    return this.locked(async () => {
      const cur = await this.backend.read();
      return cur === undefined ? [] : guestsOf(cur);
    });
  }

  /** Makes `ip`'s registration `wanted` (undefined: removes it); returns how many guests are registered. */
  set(ip: string, wanted: EgressGuest | undefined, forgetLearned: boolean): Promise<number> {
    return this.locked(async () => {
      const cur = await this.backend.read();
      const others = (cur?.guests ?? []).filter((g) => g.ip !== ip).length;
      this.allowing.delete(ip);
      if (wanted === undefined && others === 0) {
        this.allowing.clear();
        await this.backend.removeAll();
        return 0;
      }
      if (wanted === undefined && cur?.guests.some((g) => g.ip === ip) !== true) return others;
      await this.backend.replaceGuest(this.host, cur, ip, wanted, forgetLearned);
      if (wanted?.mode === "allow") this.allowing.add(ip);
      return others + (wanted === undefined ? 0 : 1);
    });
  }

  /** Allows `addrs` to a guest under an allow policy; refused for any other guest. */
  learn(ip: string, addrs: readonly LearnedAddr[]): Promise<number> {
    return this.locked(async () => {
      if (addrs.length === 0) return 0;
      if (!this.allowing.has(ip)) {
        const cur = await this.backend.read();
        const g = cur === undefined ? undefined : guestsOf(cur).find((s) => s.ip === ip);
        if (g?.mode === "allow") this.allowing.add(ip);
        else throw new RpcError("bad_params", `guest_ip: ${ip} is not registered with an allow policy (${g === undefined ? "not registered" : `mode ${g.mode}`}); addresses are learned only for allow= policies`);
      }
      try {
        await this.backend.learn(ip, addrs);
      } catch (e) {
        // The tables may have gone (deleted by hand): look again next time.
        this.allowing.delete(ip);
        throw e;
      }
      return addrs.length;
    });
  }
}
