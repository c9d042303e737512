import { readFileSync } from "node:fs";

export interface Account {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** A user from the password database (/etc/passwd; banger's hosts keep local accounts there). */
export function lookupAccount(name: string, passwdFile = "/etc/passwd"): Account | undefined {
  for (const line of readFileSync(passwdFile, "utf8").split("\n")) {
    const f = line.split(":");
    if (f[0] === name && f.length >= 7) return { name, uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? "/" };
  }
  return undefined;
}

/**
 * The owner of an install: --owner, else whoever ran sudo. Root as the owner is allowed only when
 * asked for by name: a daemon running as root would throw away the privilege split.
 */
export function resolveOwner(flag: string | undefined, env: Readonly<Record<string, string | undefined>>, lookup: (name: string) => Account | undefined = lookupAccount): Account | { error: string } {
  const name = flag ?? (env["SUDO_USER"] !== undefined && env["SUDO_USER"] !== "" ? env["SUDO_USER"] : undefined);
  if (name === undefined) return { error: "no owner: run it through sudo as the user who will own the VMs (sudo banger system install), or name one with --owner USER" };
  if (!/^[a-z_][a-z0-9_.-]{0,31}\$?$/i.test(name)) return { error: `--owner ${JSON.stringify(name)} is not a user name` };
  const account = lookup(name);
  if (account === undefined) return { error: `--owner ${name}: no such user in /etc/passwd; create the user first (useradd -m ${name})` };
  if (account.uid === 0 && flag === undefined) return { error: "sudo was run by root itself: name the user who will own the VMs with --owner USER (--owner root runs the daemon as root, which gives up the privilege split)" };
  return account;
}
