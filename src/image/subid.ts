import { readFile } from "node:fs/promises";
import { userInfo } from "node:os";

export interface SubIdRange {
  readonly start: number;
  readonly count: number;
}

/** First /etc/subuid (or subgid) range of the user, matched by name or numeric id. */
export function parseSubIds(text: string, user: string, id: number): SubIdRange | undefined {
  for (const line of text.split("\n")) {
    const [who, start, count] = line.trim().split(":");
    if ((who === user || who === String(id)) && start !== undefined && count !== undefined) {
      const s = Number(start);
      const c = Number(count);
      if (Number.isInteger(s) && Number.isInteger(c) && c >= 65536) return { start: s, count: c };
    }
  }
  return undefined;
}

/**
 * The user-namespace prefix that reproduces mmdebstrap's unshare-mode id map
 * (guest uid 0..65535 -> the owner's subuid range), so a tree it produced can
 * be read and turned into ext4 with its ownership intact, without root.
 */
export async function subidNamespace(uid: number): Promise<string[]> {
  const user = userInfo().username;
  const sub = parseSubIds(await readFile("/etc/subuid", "utf8").catch(() => ""), user, uid);
  const subg = parseSubIds(await readFile("/etc/subgid", "utf8").catch(() => ""), user, uid);
  if (sub === undefined || subg === undefined) {
    throw new Error(`building a Debian image as ${user} needs a range of at least 65536 ids in /etc/subuid and /etc/subgid (e.g. "${user}:100000:65536"; usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ${user}) and the uidmap package`);
  }
  // --setuid/--setgid 0: become the namespace's root, or exec would drop the capabilities needed to read 0700 dirs.
  return ["unshare", `--map-users=${sub.start},0,65536`, `--map-groups=${subg.start},0,65536`, "--setuid=0", "--setgid=0", "--"];
}
