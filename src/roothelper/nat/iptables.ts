import { CommandError, type Runner } from "../../system/runner.js";
import type { DnsRedirect, NatBackend, NatGuest, NatState } from "./types.js";

/**
 * iptables fallback for hosts without a working `nft`. banger owns three chains,
 * BANGER-FWD (filter), BANGER-POST and BANGER-PRE (nat), jumped to from FORWARD,
 * POSTROUTING and PREROUTING (guests' DNS, see DnsRedirect); per-guest rules carry the tap as a comment. Removing
 * everything deletes the jumps and the two chains. Unlike the nftables
 * backend a guest's three rules are separate commands (not one transaction).
 */

export const FWD_CHAIN = "BANGER-FWD";
export const POST_CHAIN = "BANGER-POST";
export const PRE_CHAIN = "BANGER-PRE";
/** A RETURN rule carrying this comment records that banger switched ip_forward on. */
const IP_FORWARD_MARKER = "banger-ip-forward-owned";

/** The argv tails (after `iptables -w`) that install one guest. Exported for unit tests. */
export function guestRules(bridge: string, guest: NatGuest, dns?: DnsRedirect): string[][] {
  const tag = ["-m", "comment", "--comment", guest.tap];
  const redirect = (proto: string): string[] => ["-t", "nat", "-I", PRE_CHAIN, "1", "-s", `${guest.ip}/32`, "-i", bridge, "-d", `${dns?.gateway ?? ""}/32`, "-p", proto, "--dport", "53", ...tag, "-j", "REDIRECT", "--to-ports", String(dns?.port ?? 0)];
  return [
    ["-I", FWD_CHAIN, "1", "-s", `${guest.ip}/32`, "-i", bridge, ...tag, "-j", "ACCEPT"],
    ["-I", FWD_CHAIN, "1", "-d", `${guest.ip}/32`, "-o", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", ...tag, "-j", "ACCEPT"],
    ["-t", "nat", "-I", POST_CHAIN, "1", "-s", `${guest.ip}/32`, "!", "-o", bridge, ...tag, "-j", "MASQUERADE"],
    ...(dns === undefined ? [] : [redirect("udp"), redirect("tcp")]),
  ];
}

/** Parses `iptables -S BANGER-FWD` into guests (one per source-IP ACCEPT rule). Exported for unit tests. */
export function parseFwdChain(text: string): NatState {
  const guests: NatGuest[] = [];
  let ipForwardOwned = false;
  for (const line of text.split("\n")) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== "-A" || words[1] !== FWD_CHAIN) continue;
    const comment = valueAfter(words, "--comment");
    if (comment === IP_FORWARD_MARKER) ipForwardOwned = true;
    const src = valueAfter(words, "-s");
    if (src !== undefined) guests.push({ ip: src.replace(/\/32$/, ""), tap: comment ?? "" });
  }
  return { guests, ipForwardOwned };
}

function valueAfter(words: readonly string[], flag: string): string | undefined {
  const i = words.indexOf(flag);
  return i >= 0 ? words[i + 1] : undefined;
}

/** `iptables -S` lines of CHAIN that mention IP, turned into `-D` argv tails. */
function deletionsFor(text: string, chain: string, ip: string, table: string[]): string[][] {
  const out: string[][] = [];
  for (const line of text.split("\n")) {
    const words = line.trim().split(/\s+/);
    if (words[0] !== "-A" || words[1] !== chain) continue;
    if (valueAfter(words, "-s") !== `${ip}/32` && valueAfter(words, "-d") !== `${ip}/32`) continue;
    out.push([...table, "-D", ...words.slice(1)]);
  }
  return out;
}

export function iptablesBackend(runner: Runner, iptables = "iptables", dns?: DnsRedirect): NatBackend {
  // -w: wait for the xtables lock instead of failing when another tool holds it.
  const ipt = (args: readonly string[]): Promise<unknown> => runner.run([iptables, "-w", ...args], { timeoutMs: 15_000 });
  const list = async (args: readonly string[]): Promise<string | undefined> => {
    try {
      return (await runner.run([iptables, "-w", ...args], { timeoutMs: 15_000 })).stdout.toString("utf8");
    } catch (e) {
      // Exit 1 ("No chain/target/match by that name") means banger's chain is not there.
      if (e instanceof CommandError && e.exitCode === 1) return undefined;
      throw e;
    }
  };
  return {
    kind: "iptables",
    async available() {
      try {
        await runner.run([iptables, "-w", "-S", "FORWARD"], { timeoutMs: 15_000 });
        return true;
      } catch {
        return false;
      }
    },
    async state() {
      const text = await list(["-S", FWD_CHAIN]);
      return text === undefined ? undefined : parseFwdChain(text);
    },
    async create(bridge, ipForwardOwned, guest) {
      await ipt(["-N", FWD_CHAIN]);
      await ipt(["-t", "nat", "-N", POST_CHAIN]);
      await ipt(["-t", "nat", "-N", PRE_CHAIN]);
      if (ipForwardOwned) await ipt(["-A", FWD_CHAIN, "-m", "comment", "--comment", IP_FORWARD_MARKER, "-j", "RETURN"]);
      for (const rule of guestRules(bridge, guest, dns)) await ipt(rule);
      // Jumps last, so no packet ever traverses a half-filled chain.
      await ipt(["-I", "FORWARD", "1", "-j", FWD_CHAIN]);
      await ipt(["-t", "nat", "-I", "POSTROUTING", "1", "-j", POST_CHAIN]);
      await ipt(["-t", "nat", "-I", "PREROUTING", "1", "-j", PRE_CHAIN]);
    },
    async addGuests(bridge, guests) {
      for (const guest of guests) for (const rule of guestRules(bridge, guest, dns)) await ipt(rule);
    },
    async removeGuest(ip) {
      const errors: unknown[] = [];
      const fwd = (await list(["-S", FWD_CHAIN])) ?? "";
      const post = (await list(["-t", "nat", "-S", POST_CHAIN])) ?? "";
      const pre = (await list(["-t", "nat", "-S", PRE_CHAIN])) ?? "";
      for (const del of [...deletionsFor(fwd, FWD_CHAIN, ip, []), ...deletionsFor(post, POST_CHAIN, ip, ["-t", "nat"]), ...deletionsFor(pre, PRE_CHAIN, ip, ["-t", "nat"])]) {
        await ipt(del).catch((e: unknown) => errors.push(e));
      }
      if (errors.length > 0) throw new AggregateError(errors, `removing iptables rules of ${ip} failed`);
    },
    async removeAll() {
      const errors: unknown[] = [];
      const step = async (args: readonly string[], tolerateMissing: boolean): Promise<boolean> => {
        try {
          await ipt(args);
          return true;
        } catch (e) {
          if (!(tolerateMissing && e instanceof CommandError && e.exitCode === 1)) errors.push(e);
          return false;
        }
      };
      // Delete every jump (a crash could have left duplicates), then the chains themselves.
      for (const [table, hook, chain] of [[[], "FORWARD", FWD_CHAIN], [["-t", "nat"], "POSTROUTING", POST_CHAIN], [["-t", "nat"], "PREROUTING", PRE_CHAIN]] as const) {
        // A jump cannot outlive its target chain, so a missing chain means there is nothing to do.
        if ((await list([...table, "-S", chain])) === undefined) continue;
        for (let i = 0; i < 16 && (await step([...table, "-D", hook, "-j", chain], true)); i++) { /* until no jump is left */ }
        await step([...table, "-F", chain], false);
        await step([...table, "-X", chain], false);
      }
      if (errors.length > 0) throw new AggregateError(errors, "removing banger's iptables chains failed");
    },
  };
}
