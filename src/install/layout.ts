import { join } from "node:path";

/**
 * Every path of an installed banger (`banger system install`), in one place. The code is
 * root-owned and versioned; root runs nothing else. `root` relocates the whole tree (tests install
 * into a temp dir; the host's is "/"), so no test writes the host's /etc or /usr/local.
 *
 *   <root>/usr/local/lib/banger/<version>/   package.json, dist/, production node_modules/ (root's, 0755)
 *   <root>/usr/local/lib/banger/current      -> <version>, replaced by rename so the swap is atomic
 *   <root>/etc/banger/config.toml            the helper's and daemon's config (root's, 0644)
 *   <root>/etc/banger/install.json           install metadata (metadata.ts; root's, 0644)
 *   <root>/var/lib/banger/                   state dir (the owner's, 0700)
 *   <root>/run/banger/                       the daemon's runtime dir and socket (the owner's, 0700)
 *   <root>/run/banger-root/                  the helper's socket and per-VM run dirs (root's, 0711)
 *   <root>/run/banger-services/              detached mode: one pidfile per service (root's, 0755)
 *   <root>/var/log/banger/                   detached mode: one log per service (root's, 0755)
 *   <root>/etc/systemd/system/               systemd mode: the two units
 */
export interface InstallLayout {
  /** "/" on a real host. */
  readonly root: string;
  /** Parent of the versioned code directories. */
  readonly libDir: string;
  /** The symlink to the active version's directory. */
  readonly currentLink: string;
  readonly etcDir: string;
  readonly configFile: string;
  readonly metadataFile: string;
  readonly stateDir: string;
  readonly runtimeDir: string;
  readonly daemonSocket: string;
  /** The helper's socket dir; its per-VM run dirs live in it (paths.ts helperVmFiles). */
  readonly helperDir: string;
  readonly helperSocket: string;
  readonly pidDir: string;
  readonly logDir: string;
  readonly unitDir: string;
}

/** The two services, by the name of their binary (and of their unit). */
export const SERVICES = ["bangerd-root", "bangerd"] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Where BANGER_INSTALL_ROOT is unset: the host's own tree. */
export const HOST_ROOT = "/";

export function installLayout(root: string = HOST_ROOT): InstallLayout {
  if (!root.startsWith("/")) throw new Error(`install root must be an absolute path, got ${JSON.stringify(root)}`);
  const at = (p: string): string => join(root, p);
  const libDir = at("/usr/local/lib/banger");
  const runtimeDir = at("/run/banger");
  const helperDir = at("/run/banger-root");
  return {
    root,
    libDir,
    currentLink: join(libDir, "current"),
    etcDir: at("/etc/banger"),
    configFile: at("/etc/banger/config.toml"),
    metadataFile: at("/etc/banger/install.json"),
    stateDir: at("/var/lib/banger"),
    runtimeDir,
    daemonSocket: join(runtimeDir, "bangerd.sock"),
    helperDir,
    helperSocket: join(helperDir, "helper.sock"),
    pidDir: at("/run/banger-services"),
    logDir: at("/var/log/banger"),
    unitDir: at("/etc/systemd/system"),
  };
}

/** Files inside the layout that depend on a version or a service. */
export const installFiles = {
  /** One version's self-contained copy of the package. */
  versionDir: (l: InstallLayout, version: string) => join(l.libDir, version),
  /** A service's bundle inside a version's directory (or `current`). */
  serviceBin: (codeDir: string, service: ServiceName) => join(codeDir, "dist", "bin", `${service}.cjs`),
  cliBin: (codeDir: string) => join(codeDir, "dist", "bin", "banger.cjs"),
  unitFile: (l: InstallLayout, service: ServiceName) => join(l.unitDir, `${service}.service`),
  pidFile: (l: InstallLayout, service: ServiceName) => join(l.pidDir, `${service}.pid`),
  logFile: (l: InstallLayout, service: ServiceName) => join(l.logDir, `${service}.log`),
} as const;

/** Names a version directory may have: they become path components under root's lib dir. */
export const VERSION_PATTERN = /^[0-9A-Za-z][0-9A-Za-z.+-]{0,63}$/;

/** The install root the CLI and tests use: BANGER_INSTALL_ROOT, else the host's. */
export function installRootFromEnv(env: Readonly<Record<string, string | undefined>>): string {
  const v = env["BANGER_INSTALL_ROOT"];
  return v !== undefined && v.trim() !== "" ? v : HOST_ROOT;
}
