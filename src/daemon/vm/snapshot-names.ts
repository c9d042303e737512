/**
 * Snapshot names: what `vm snapshot --name` accepts, what banger picks when none is given, and the
 * reserved name of an image's warm template. Anchored, so a name never carries a path separator,
 * a leading dot or anything a terminal would interpret.
 */
const SNAPSHOT_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

export function checkSnapshotName(name: string): string | undefined {
  if (SNAPSHOT_NAME_RE.test(name)) return undefined;
  return `invalid snapshot name ${JSON.stringify(name)}: use 1-63 of a-z 0-9 . _ -, starting with a letter or digit`;
}

/** `NAME-YYYYMMDD-HHMMSS`, numbered when two snapshots of one VM are taken within a second. */
export function defaultSnapshotName(vmName: string, taken: ReadonlySet<string>, now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  const base = `${vmName}-${stamp}`;
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}-${n}`)) return `${base}-${n}`;
}

/** The warm template of image `image` (`image warm`); `vm snapshot --name` refuses names starting with "template.". */
export function templateName(image: string): string {
  return `template.${image}`;
}

/** Names of `count` forks of `source`: `--name N` gives N (one fork) or N-1..N-K, else SOURCE-fork-I with the first free numbers. */
export function forkNames(source: string, count: number, taken: ReadonlySet<string>, name?: string): string[] {
  if (name !== undefined) return count === 1 ? [name] : Array.from({ length: count }, (_, i) => `${name}-${i + 1}`);
  const out: string[] = [];
  for (let i = 1; out.length < count; i++) {
    const n = `${source}-fork-${i}`;
    if (!taken.has(n)) out.push(n);
  }
  return out;
}
