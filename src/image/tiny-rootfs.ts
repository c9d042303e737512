import { chmod, copyFile, mkdir, symlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { runText, type Runner } from "../system/runner.js";
import { AGENT_PATH, agentScript, DROPBEAR_START, RESEED_PATH } from "./agent-script.js";
import { isStatic, readElfFile } from "./elf.js";
import { reseedElf } from "./reseed-elf.js";

/** Host binaries the tiny image is made of (Debian: busybox-static, dropbear-bin). */
export interface TinyInputs {
  readonly busybox: string;
  readonly dropbear: string;
  readonly dropbearkey: string;
}

export const DEFAULT_TINY_INPUTS: TinyInputs = {
  busybox: "/bin/busybox",
  dropbear: "/usr/sbin/dropbear",
  dropbearkey: "/usr/bin/dropbearkey",
};

/** The dynamic loader that `ld.so --list` is run with to find a binary's libraries. */
const HOST_LOADER = "/lib64/ld-linux-x86-64.so.2";

// busybox init runs this once at boot. It parses (never sources) the files VM
// create injects, because they are data, not code.
const RCS = `#!/bin/sh
# banger tiny image: bring the system up.
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mounted() { grep -q " $1 " /proc/mounts; }
mounted /proc || mount -t proc proc /proc
mounted /sys || mount -t sysfs sysfs /sys
mounted /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mounted /dev/pts || mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -o remount,rw /
# fstab (injected per VM): work disk on /root, tmpfs on /run and /tmp.
mount -a || echo "banger: some fstab entries did not mount" >&2
mkdir -p /run /var/log /etc/dropbear
[ -s /etc/hostname ] && hostname -F /etc/hostname
ip link set lo up
if [ -f /etc/banger/network ]; then
  MAC=""; IP=""; PREFIX=""; GATEWAY=""; DNS=""
  while IFS='=' read -r key value; do
    case "$key" in
      MAC) MAC=$(echo "$value" | tr 'A-F' 'a-f') ;;
      IP) IP=$value ;;
      PREFIX) PREFIX=$value ;;
      GATEWAY) GATEWAY=$value ;;
      DNS) DNS="$DNS $(echo "$value" | tr ',' ' ')" ;;
    esac
  done < /etc/banger/network
  dev=""
  for d in /sys/class/net/*; do
    [ "$(cat "$d/address" 2>/dev/null)" = "$MAC" ] && dev=\${d##*/}
  done
  if [ -z "$dev" ]; then
    echo "banger: no network interface with MAC $MAC" >&2
  else
    ip link set "$dev" up
    [ -n "$IP" ] && ip addr add "$IP/\${PREFIX:-24}" dev "$dev"
    [ -n "$GATEWAY" ] && ip route add default via "$GATEWAY" dev "$dev"
    echo "banger: $dev configured as $IP/\${PREFIX:-24}"
  fi
  if [ -n "\${DNS# }" ] && [ ! -s /etc/resolv.conf ]; then
    for ns in $DNS; do echo "nameserver $ns"; done > /etc/resolv.conf
  fi
fi
# -s: no password logins (key-only root login); -R: create any missing host key.
${DROPBEAR_START} && echo "banger: dropbear started"
echo "banger: tiny guest ready"
`;

// busybox init runs this on reboot/poweroff (ctrl-alt-del, SIGTERM to init).
const RCK = `#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
echo "banger: guest shutting down"
[ -f /run/dropbear.pid ] && kill "$(cat /run/dropbear.pid)" 2>/dev/null
sync
umount -a -r 2>/dev/null
mount -o remount,ro / 2>/dev/null
sync
`;

// ctrl-alt-del (what the VMM sends for a graceful stop) makes init reboot;
// with reboot=k and -no-reboot the VMM process then exits.
const INITTAB = `::sysinit:/etc/init.d/rcS
ttyS0::respawn:-/bin/sh
::respawn:${AGENT_PATH}
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
`;

const FILES: readonly (readonly [string, string | Buffer, number])[] = [
  ["etc/inittab", INITTAB, 0o644],
  ["etc/init.d/rcS", RCS, 0o755],
  ["etc/init.d/rcK", RCK, 0o755],
  ["etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n", 0o644],
  ["etc/group", "root:x:0:\ntty:x:5:\nnogroup:x:65534:\n", 0o644],
  // '*' (not '!'): the account has no password but is not "locked", which dropbear would refuse even for keys.
  ["etc/shadow", "root:*:19000:0:99999:7:::\n", 0o600],
  ["etc/shells", "/bin/sh\n", 0o644],
  ["etc/hostname", "banger\n", 0o644],
  ["etc/hosts", "127.0.0.1 localhost\n127.0.1.1 banger\n", 0o644],
  ["etc/fstab", "tmpfs /run tmpfs defaults,mode=0755 0 0\ntmpfs /tmp tmpfs defaults,mode=1777 0 0\n", 0o644],
  [AGENT_PATH.slice(1), agentScript("tiny"), 0o755],
  [RESEED_PATH.slice(1), reseedElf(), 0o755],
  ["etc/profile", "export PATH=/sbin:/bin:/usr/sbin:/usr/bin\nexport PS1='\\h:\\w# '\n", 0o644],
];

const DIRS: readonly (readonly [string, number])[] = [
  ["bin", 0o755], ["sbin", 0o755], ["usr", 0o755], ["usr/bin", 0o755], ["usr/sbin", 0o755], ["usr/lib", 0o755], ["usr/lib/banger", 0o755],
  ["etc", 0o755], ["etc/init.d", 0o755], ["etc/dropbear", 0o700], ["etc/banger", 0o755],
  ["dev", 0o755], ["proc", 0o555], ["sys", 0o555], ["run", 0o755], ["tmp", 0o1777],
  ["root", 0o700], ["var", 0o755], ["var/log", 0o755], ["mnt", 0o755],
];

/** Shared libraries (absolute host paths, loader included) a dynamic binary needs. */
export async function sharedLibraries(runner: Runner, binary: string): Promise<string[]> {
  const out = await runText(runner, [HOST_LOADER, "--list", binary]);
  const libs = new Set<string>();
  for (const line of out.split("\n")) {
    const m = /=>\s*(\/\S+)/.exec(line) ?? /^\s*(\/\S+)\s+\(/.exec(line);
    if (m?.[1] !== undefined) libs.add(m[1]);
  }
  return [...libs];
}

async function copyInto(tree: string, hostPath: string, mode: number): Promise<void> {
  const dest = join(tree, hostPath);
  await mkdir(dirname(dest), { recursive: true });
  await copyFile(hostPath, dest);
  await chmod(dest, mode);
}

/**
 * Populate TREE with the tiny (busybox flavor) root filesystem: busybox init
 * + applets, dropbear with its libraries, and the init scripts. Needs no root:
 * ownership is fixed when the tree is turned into ext4 (see ext4.ts).
 */
export async function buildTinyTree(runner: Runner, tree: string, inputs: TinyInputs = DEFAULT_TINY_INPUTS, signal?: AbortSignal): Promise<void> {
  const bb = await readElfFile(inputs.busybox).catch((e: unknown) => {
    throw new Error(`busybox ${inputs.busybox} is not usable: ${e instanceof Error ? e.message : String(e)} (install busybox-static)`);
  });
  if (!isStatic(bb)) throw new Error(`busybox ${inputs.busybox} is dynamically linked; install busybox-static`);
  for (const [d, mode] of DIRS) {
    await mkdir(join(tree, d), { recursive: true });
    await chmod(join(tree, d), mode);
  }
  await copyFile(inputs.busybox, join(tree, "bin/busybox"));
  await chmod(join(tree, "bin/busybox"), 0o755);
  for (const applet of (await runText(runner, [inputs.busybox, "--list-full"])).split("\n")) {
    const rel = applet.trim();
    if (rel === "" || rel === "bin/busybox" || rel.includes("..")) continue;
    const link = join(tree, rel);
    await mkdir(dirname(link), { recursive: true });
    await symlink("/bin/busybox", link);
  }
  signal?.throwIfAborted();
  for (const bin of [inputs.dropbear, inputs.dropbearkey]) {
    await copyInto(tree, bin, 0o755);
    for (const lib of await sharedLibraries(runner, bin)) await copyInto(tree, lib, 0o755).catch((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    });
  }
  signal?.throwIfAborted();
  for (const [rel, text, mode] of FILES) {
    await writeFile(join(tree, rel), text);
    await chmod(join(tree, rel), mode);
  }
}
