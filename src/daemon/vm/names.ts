import { randomInt } from "node:crypto";
import { DNS_LABEL_RE } from "../../model/dns-label.js";

/**
 * VM names: generated adjective-noun pairs when the user gives none, and a
 * DNS-label check when they do, because every name becomes `NAME.vm`.
 */
const ADJECTIVES = [
  "amber", "bold", "brave", "brisk", "calm", "clever", "cosmic", "crisp", "dapper", "eager", "fancy", "fuzzy",
  "gentle", "glad", "golden", "happy", "hardy", "humble", "jolly", "keen", "lively", "lucky", "mellow", "merry",
  "misty", "nimble", "noble", "plucky", "proud", "quick", "quiet", "rapid", "rosy", "rustic", "shiny", "silent",
  "silver", "sleek", "snappy", "solid", "spry", "steady", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
] as const;
const NOUNS = [
  "badger", "beacon", "birch", "bison", "canyon", "cedar", "comet", "coral", "crane", "delta", "ember", "falcon",
  "fern", "fjord", "gecko", "glacier", "harbor", "heron", "island", "lagoon", "lark", "lynx", "maple", "meadow",
  "mesa", "otter", "panda", "pebble", "pine", "prairie", "quartz", "raven", "reef", "ridge", "river", "robin",
  "saffron", "sparrow", "spruce", "summit", "tundra", "valley", "walrus", "willow", "yak", "zephyr", "orca", "puffin",
] as const;

/** Returns an error message when `name` cannot be a VM name, undefined when it can. */
export function checkVmName(name: string): string | undefined {
  if (DNS_LABEL_RE.test(name)) return undefined;
  const why = name === "" ? "it is empty"
    : name.length > 63 ? `it is ${name.length} characters long (at most 63)`
    : /[A-Z]/.test(name) ? "it has upper-case letters"
    : name.startsWith("-") || name.endsWith("-") ? "it starts or ends with '-'"
    : "it has characters other than a-z, 0-9 and '-'";
  return `invalid VM name ${JSON.stringify(name)}: ${why}. A VM name must be a DNS label (1-63 of a-z 0-9 -, not starting or ending with -) because it becomes NAME.vm`;
}

/** A fresh adjective-noun name not in `taken`; falls back to a numbered suffix when the space is crowded. */
export function generateVmName(taken: ReadonlySet<string>, pick: (n: number) => number = randomInt): string {
  for (let attempt = 0; attempt < 64; attempt++) {
    const name = `${ADJECTIVES[pick(ADJECTIVES.length)] ?? "quick"}-${NOUNS[pick(NOUNS.length)] ?? "otter"}`;
    if (!taken.has(name)) return name;
  }
  const base = `${ADJECTIVES[pick(ADJECTIVES.length)] ?? "quick"}-${NOUNS[pick(NOUNS.length)] ?? "otter"}`;
  for (let n = 2; ; n++) {
    const name = `${base}-${n}`;
    if (!taken.has(name)) return name;
  }
}
