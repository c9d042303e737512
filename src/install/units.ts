import type { InstallLayout, ServiceName } from "./layout.js";
import type { InstallMetadata } from "./metadata.js";
import { serviceCommand } from "./service-command.js";

/**
 * What the root helper needs and nothing more (the bounding set of everything it starts, VMMs
 * included): NET_ADMIN bridge/taps/NAT; SYS_ADMIN loop and dm devices, the jailer's mount
 * namespace and pivot_root; SYS_CHROOT the jailer's chroot; MKNOD the jail's /dev/kvm and
 * /dev/net/tun; CHOWN/FOWNER/DAC_OVERRIDE/DAC_READ_SEARCH files handed to the owner and read beneath
 * the owner's 0700 state dir; SETUID/SETGID the jailer's, qemu's -runas and setpriv's drop to the
 * owner; SETPCAP setpriv's --bounding-set=-all for the ext4 parsers; KILL signals to the owner's VMMs;
 * SYS_RESOURCE the jailer's rlimits.
 */
export const HELPER_CAPABILITIES = [
  "CAP_NET_ADMIN",
  "CAP_SYS_ADMIN",
  "CAP_SYS_CHROOT",
  "CAP_MKNOD",
  "CAP_CHOWN",
  "CAP_FOWNER",
  "CAP_DAC_OVERRIDE",
  "CAP_DAC_READ_SEARCH",
  "CAP_SETUID",
  "CAP_SETGID",
  "CAP_SETPCAP",
  "CAP_KILL",
  "CAP_SYS_RESOURCE",
] as const;

/** systemd's quoting for one ExecStart word: paths from install.json never hold quotes, but a space must not split a word. */
function quoteWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `"${w.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

function environmentLines(env: Readonly<Record<string, string>>): string[] {
  return Object.entries(env).map(([k, v]) => `Environment=${quoteWord(`${k}=${v}`)}`);
}

/**
 * The two unit files. Both use KillMode=process: stopping or restarting a service signals its main
 * process only, so the VMMs the helper started (in their own sessions, but in its cgroup) keep
 * running and the next daemon re-adopts them. NoNewPrivileges is compatible with the helper: it is
 * root already and only ever drops privileges (setpriv, the jailer, qemu -runas), never gains them
 * through a setuid binary. ProtectSystem=true (read-only /usr, /boot) and not "full": the helper
 * keeps the /etc/hosts block of NAME.vm names; ProtectHome is left off for it since loop devices and
 * the jail must see the state dir wherever the owner keeps it.
 */
export function renderUnits(meta: InstallMetadata, layout: InstallLayout): Record<ServiceName, string> {
  const helper = serviceCommand(meta, layout, "bangerd-root");
  const daemon = serviceCommand(meta, layout, "bangerd");
  const runtimeName = layout.runtimeDir.startsWith("/run/") ? layout.runtimeDir.slice("/run/".length) : undefined;
  if (runtimeName === undefined) throw new Error(`systemd units need the runtime dir under /run, not ${layout.runtimeDir}`);
  return {
    "bangerd-root": [
      "[Unit]",
      "Description=banger root helper (privileged half of banger's microVM daemon)",
      "Documentation=file:///usr/local/lib/banger/current/README.md",
      "After=network.target",
      "",
      "[Service]",
      "Type=simple",
      `ExecStart=${helper.argv.map(quoteWord).join(" ")}`,
      ...environmentLines(helper.env),
      "KillMode=process",
      "Restart=on-failure",
      "RestartSec=1",
      "UMask=0077",
      `CapabilityBoundingSet=${HELPER_CAPABILITIES.join(" ")}`,
      "NoNewPrivileges=yes",
      "ProtectSystem=true",
      "ProtectClock=yes",
      "ProtectHostname=yes",
      "RestrictRealtime=yes",
      "LockPersonality=yes",
      "",
      "[Install]",
      "WantedBy=multi-user.target",
      "",
    ].join("\n"),
    bangerd: [
      "[Unit]",
      "Description=banger daemon (microVMs of the owner, unprivileged)",
      "Documentation=file:///usr/local/lib/banger/current/README.md",
      "Wants=bangerd-root.service",
      "After=bangerd-root.service network.target",
      "",
      "[Service]",
      "Type=simple",
      `User=${meta.owner.name}`,
      `Group=${meta.owner.gid}`,
      `ExecStart=${daemon.argv.map(quoteWord).join(" ")}`,
      ...environmentLines(daemon.env),
      // The daemon's socket dir, the owner's 0700: systemd makes it at each start (after a reboot /run is empty).
      `RuntimeDirectory=${runtimeName}`,
      "RuntimeDirectoryMode=0700",
      "RuntimeDirectoryPreserve=yes",
      "KillMode=process",
      "Restart=on-failure",
      "RestartSec=1",
      "UMask=0077",
      "CapabilityBoundingSet=",
      "NoNewPrivileges=yes",
      "ProtectSystem=full",
      "ProtectHome=read-only",
      "",
      "[Install]",
      "WantedBy=multi-user.target",
      "",
    ].join("\n"),
  };
}
