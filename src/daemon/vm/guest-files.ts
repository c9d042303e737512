import type { GuestEdits, GuestFile, Lease } from "./deps.js";

/**
 * What VM create writes into a new VM's disks (the guest contract): identity,
 * resolver, fstab and network config into the root clone; the install's
 * public key into the work disk, which the guest mounts at /root.
 */
export interface GuestIdentity {
  readonly name: string;
  readonly flavor: "systemd" | "busybox";
  readonly lease: Lease;
  /** Host key in the format the guest's sshd wants (OpenSSH for systemd images, dropbear for busybox). */
  readonly hostKey: { readonly private: Buffer; readonly public: string };
}

const root = (path: string, content: string | Buffer, mode: number): GuestFile => ({ path, content: typeof content === "string" ? Buffer.from(content, "utf8") : content, mode, uid: 0, gid: 0 });

/**
 * The image's fstab merged with banger's mounts (the seed's UpdateFSTab, plus): every entry of the
 * image is kept, comments too, except the seed's old /home and /var disks and any entry that would
 * take banger's work disk (/dev/vdb) or its mount point (/root) for something else; then /root,
 * /run and /tmp are ensured.
 */
export function updateFstab(existing: string): string {
  const out: string[] = [];
  let hasRoot = false;
  let hasRun = false;
  let hasTmp = false;
  for (const line of existing.split("\n")) {
    const trimmed = line.trim();
    if (trimmed === "") continue;
    const [dev, mnt] = trimmed.split(/\s+/);
    if (dev === "/dev/vdb" && mnt === "/home") continue;
    if (dev === "/dev/vdc" && mnt === "/var") continue;
    if (dev === "/dev/vdb" && mnt === "/root") hasRoot = true;
    else if (!trimmed.startsWith("#") && (dev === "/dev/vdb" || mnt === "/root")) continue;
    if (dev === "tmpfs" && mnt === "/run") hasRun = true;
    if (dev === "tmpfs" && mnt === "/tmp") hasTmp = true;
    out.push(line);
  }
  if (!hasRoot) out.push("/dev/vdb /root ext4 defaults 0 2");
  if (!hasRun) out.push("tmpfs /run tmpfs defaults,nodev,nosuid,mode=0755 0 0");
  if (!hasTmp) out.push("tmpfs /tmp tmpfs defaults,nodev,nosuid,mode=1777 0 0");
  return out.join("\n") + "\n";
}

// Values end up in guest config files; a newline would let one smuggle extra directives.
function assertLine(field: string, value: string): string {
  if (!/^[A-Za-z0-9.:_/-]+$/.test(value)) throw new Error(`${field} ${JSON.stringify(value)} has characters not allowed in guest config`);
  return value;
}

export function rootDiskEdits(g: GuestIdentity, imageFstab = ""): GuestEdits {
  const name = assertLine("name", g.name);
  const ip = assertLine("ip", g.lease.ip);
  const mac = assertLine("mac", g.lease.mac.toLowerCase());
  const gw = assertLine("gateway", g.lease.gateway);
  const dns = g.lease.nameservers.map((n) => assertLine("nameserver", n));
  const prefix = String(g.lease.prefix);
  const files: GuestFile[] = [
    root("/etc/hostname", `${name}\n`, 0o644),
    root("/etc/hosts", `127.0.0.1 localhost\n127.0.1.1 ${name}\n::1 localhost ip6-localhost ip6-loopback\n`, 0o644),
    root("/etc/resolv.conf", dns.map((d) => `nameserver ${d}\n`).join(""), 0o644),
    root("/etc/fstab", updateFstab(imageFstab), 0o644),
  ];
  const dirs = [];
  if (g.flavor === "systemd") {
    dirs.push({ path: "/etc/systemd/network", mode: 0o755, uid: 0, gid: 0 }, { path: "/etc/ssh", mode: 0o755, uid: 0, gid: 0 });
    files.push(
      root("/etc/systemd/network/10-banger.network", `[Match]\nMACAddress=${mac}\n\n[Network]\nAddress=${ip}/${prefix}\nGateway=${gw}\n${dns.map((d) => `DNS=${d}\n`).join("")}`, 0o644),
      root("/etc/ssh/ssh_host_ed25519_key", g.hostKey.private, 0o600),
      root("/etc/ssh/ssh_host_ed25519_key.pub", `${g.hostKey.public.trim()}\n`, 0o644),
    );
  } else {
    dirs.push({ path: "/etc/banger", mode: 0o755, uid: 0, gid: 0 }, { path: "/etc/dropbear", mode: 0o755, uid: 0, gid: 0 });
    files.push(
      root("/etc/banger/network", `MAC=${mac}\nIP=${ip}\nPREFIX=${prefix}\nGATEWAY=${gw}\nDNS=${dns.join(" ")}\n`, 0o644),
      root("/etc/dropbear/dropbear_ed25519_host_key", g.hostKey.private, 0o600),
    );
  }
  return { dirs, files };
}

/**
 * What a new work disk holds: the install's public key. The disk is mounted at /root, so
 * `/.ssh/authorized_keys` appears as /root/.ssh/authorized_keys.
 */
export function workDiskEdits(authorizedKey: string): GuestEdits {
  const key = authorizedKey.trim();
  if (key.includes("\n") || !/^ssh-ed25519 [A-Za-z0-9+/=]+( \S+)?$/.test(key)) throw new Error("the install's public key is not a single ssh-ed25519 line; remove the ssh dir in the state dir to regenerate it");
  return { dirs: [{ path: "/.ssh", mode: 0o700, uid: 0, gid: 0 }], files: [root("/.ssh/authorized_keys", `${key}\n`, 0o600)] };
}
