import { chmod, mkdir, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Runner } from "../system/runner.js";
import { AGENT_PATH, agentScript, RESEED_PATH } from "./agent-script.js";
import { reseedElf } from "./reseed-elf.js";

/** Packages of the default image: boot + ssh + networking, and a small dev-sandbox toolset. */
export const DEBIAN_PACKAGES = [
  "systemd-sysv", "openssh-server", "iproute2", "iputils-arping", "ca-certificates", "udev", "kmod", "linux-image-cloud-amd64",
  "sudo", "curl", "less", "procps", "vim-tiny", "e2fsprogs",
] as const;

/** Suites `--from debian:SUITE` accepts (what the kernel/initrd logic has been checked against). */
export const DEBIAN_SUITES = ["bookworm"] as const;

// Key-only root login: VM create injects the install's key; passwords never work.
const SSHD_DROPIN = `# banger: key-only root login
PermitRootLogin prohibit-password
PasswordAuthentication no
HostKey /etc/ssh/ssh_host_ed25519_key
KbdInteractiveAuthentication no
`;

// The guest agent (agent-script.ts): started once the port's driver can be there, restarted if it dies.
const AGENT_UNIT = `[Unit]
Description=banger guest agent (identity for snapshot forks)
After=systemd-modules-load.service

[Service]
ExecStart=${AGENT_PATH}
Restart=always
RestartSec=1
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
`;

/**
 * Files laid over the debootstrapped tree. They reach it as a tarball made
 * with --owner=0 --group=0 and unpacked by mmdebstrap's own `tar-in` (as the
 * chroot's root), so they land root-owned in both root and unshare mode
 * (`sync-in` kept the owner's uid in unshare mode: measured).
 * systemd-networkd is enabled by its wants-symlink (the per-VM .network file
 * is injected at VM create); the serial getty on ttyS0 comes from
 * systemd-getty-generator because the cmdline says console=ttyS0.
 */
export async function writeDebianOverlay(dir: string): Promise<void> {
  await mkdir(join(dir, "etc/ssh/sshd_config.d"), { recursive: true });
  await writeFile(join(dir, "etc/ssh/sshd_config.d/banger.conf"), SSHD_DROPIN);
  await mkdir(join(dir, "etc/systemd/system/multi-user.target.wants"), { recursive: true });
  await symlink("/lib/systemd/system/systemd-networkd.service", join(dir, "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"));
  await mkdir(join(dir, "etc/systemd/system/sockets.target.wants"), { recursive: true });
  await symlink("/lib/systemd/system/systemd-networkd.socket", join(dir, "etc/systemd/system/sockets.target.wants/systemd-networkd.socket"));
  await mkdir(join(dir, "usr/lib/banger"), { recursive: true });
  await writeFile(join(dir, AGENT_PATH.slice(1)), agentScript("systemd"), { mode: 0o755 });
  await writeFile(join(dir, RESEED_PATH.slice(1)), reseedElf(), { mode: 0o755 });
  await writeFile(join(dir, "etc/systemd/system/banger-agent.service"), AGENT_UNIT);
  await symlink("/etc/systemd/system/banger-agent.service", join(dir, "etc/systemd/system/multi-user.target.wants/banger-agent.service"));
  await writeFile(join(dir, "etc/hostname"), "banger\n");
  await writeFile(join(dir, "etc/fstab"), "tmpfs /run tmpfs defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n");
  for (const p of ["etc", "etc/ssh", "etc/ssh/sshd_config.d", "etc/systemd", "etc/systemd/system", "usr", "usr/lib", "usr/lib/banger"]) await chmod(join(dir, p), 0o755);
  // writeFile's mode is cut by the umask; the agent and reseed must be executable whatever it is.
  for (const p of [AGENT_PATH, RESEED_PATH]) await chmod(join(dir, p.slice(1)), 0o755);
}

/** Paths are put into mmdebstrap hook lines, which it splits on whitespace: refuse anything that would split or quote. */
function hookPath(p: string): string {
  if (!/^\/[A-Za-z0-9._/+-]+$/.test(p)) throw new Error(`path ${JSON.stringify(p)} cannot be used in an mmdebstrap hook (only letters, digits and ._/+- allowed)`);
  return p;
}

export interface DebootstrapRequest {
  readonly suite: string;
  /** Output directory (must not exist or be empty). */
  readonly tree: string;
  /** Tarball of the overlay written by writeDebianOverlay (see overlayTarArgv). */
  readonly overlayTar: string;
  /** /boot is copied here and removed from the tree (the VMM boots the kernel from outside). */
  readonly bootOut: string;
  readonly uid: number;
  readonly mirror?: string | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * mmdebstrap argv. As root it runs in root mode; as the non-root owner in
 * unshare mode (user namespace + /etc/subuid range, no privilege), so building
 * never needs the root helper.
 */
export function mmdebstrapArgv(req: DebootstrapRequest): string[] {
  if (!(DEBIAN_SUITES as readonly string[]).includes(req.suite)) throw new Error(`unsupported Debian suite ${JSON.stringify(req.suite)}; supported: ${DEBIAN_SUITES.join(", ")}`);
  const argv = [
    "mmdebstrap", "--quiet", `--mode=${req.uid === 0 ? "root" : "unshare"}`, "--variant=minbase", "--format=directory",
    `--include=${DEBIAN_PACKAGES.join(",")}`,
    `--customize-hook=tar-in ${hookPath(req.overlayTar)} /`,
    `--customize-hook=copy-out /boot ${hookPath(req.bootOut)}`,
    // Constant scripts (no interpolated input). /boot is not needed inside the
    // guest. Host keys made by openssh-server's postinst would be shared by
    // every VM: VM create injects a per-VM ed25519 key instead.
    "--customize-hook=rm -rf \"$1/boot\"/* \"$1\"/etc/ssh/ssh_host_*",
    req.suite, req.tree,
  ];
  if (req.mirror !== undefined) argv.push(req.mirror);
  return argv;
}

/** Pack the overlay dir with root ownership recorded, whoever runs this. */
export function overlayTarArgv(overlayDir: string, tarFile: string): string[] {
  return ["tar", "--owner=0", "--group=0", "--numeric-owner", "-C", overlayDir, "-cf", tarFile, "."];
}

export async function debootstrap(runner: Runner, req: DebootstrapRequest): Promise<void> {
  await runner.run(mmdebstrapArgv(req), { timeoutMs: 60 * 60_000, ...(req.signal === undefined ? {} : { signal: req.signal }) });
}
