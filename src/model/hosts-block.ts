import { DNS_LABEL_RE } from "./dns-label.js";

/**
 * banger's managed block in a hosts file (network.host_dns = "hosts"): one
 * `IP NAME.vm` line per running VM of one owner, between marker lines that
 * name the owner, so installs of several owners on one host keep separate
 * blocks. Pure text in, text out: every other line of the file, and its
 * bytes, stay as they are; the root helper does the I/O.
 */

export interface HostEntry {
  readonly name: string;
  readonly ip: string;
}

const begin = (ownerUid: number): string => `# BEGIN banger (managed, do not edit) uid=${ownerUid}`;
const end = (ownerUid: number): string => `# END banger uid=${ownerUid}`;

/** The block for `entries` (sorted by name, one line each), or "" when there are none: no VMs, no block. */
export function renderHostsBlock(ownerUid: number, entries: readonly HostEntry[]): string {
  if (entries.length === 0) return "";
  const lines = [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((e) => `${e.ip}\t${e.name}.vm\n`);
  return `${begin(ownerUid)}\n${lines.join("")}${end(ownerUid)}\n`;
}

/**
 * `existing` with this owner's block replaced by the one for `entries`
 * (appended when there was none, removed when `entries` is empty). Lines
 * outside the block are kept byte for byte; a block whose END line is missing
 * (a hand edit) ends at the end of the file. Idempotent: merging the same
 * entries twice gives the same text.
 */
export function mergeHostsFile(existing: string, ownerUid: number, entries: readonly HostEntry[]): string {
  const open = begin(ownerUid);
  const close = end(ownerUid);
  const lines = existing === "" ? [] : existing.split(/(?<=\n)/);
  const kept: string[] = [];
  let at: number | undefined;
  let inside = false;
  for (const line of lines) {
    const bare = line.replace(/\r?\n$/, "");
    if (!inside && bare === open) {
      inside = true;
      at ??= kept.length;
      continue;
    }
    if (inside) {
      if (bare === close) inside = false;
      continue;
    }
    kept.push(line);
  }
  const block = renderHostsBlock(ownerUid, entries);
  if (at === undefined) {
    if (block === "") return existing;
    const last = kept.at(-1);
    // A file that does not end with a newline gets one, or the marker would be glued to its last line.
    if (last !== undefined && !last.endsWith("\n")) kept[kept.length - 1] = `${last}\n`;
    kept.push(block);
  } else {
    kept.splice(at, 0, block);
  }
  return kept.join("");
}

/** Why `entries` cannot go into a hosts file (a name that is not a DNS label, an address `inSubnet` rejects, a name twice), or undefined. */
export function invalidHostEntries(entries: readonly HostEntry[], inSubnet: (ip: string) => boolean): string | undefined {
  const seen = new Set<string>();
  for (const [i, e] of entries.entries()) {
    if (!DNS_LABEL_RE.test(e.name)) return `entries[${i}].name: ${JSON.stringify(e.name)} is not a VM name (a DNS label of a-z 0-9 -)`;
    if (!inSubnet(e.ip)) return `entries[${i}].ip: ${JSON.stringify(e.ip)} is not a guest address on banger's bridge`;
    if (seen.has(e.name)) return `entries[${i}].name: ${JSON.stringify(e.name)} appears twice`;
    seen.add(e.name);
  }
  return undefined;
}
