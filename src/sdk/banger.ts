import { resolveContext } from "../config/context-dial.js";
import { resolveLayout } from "../paths/paths.js";
import { unixDial } from "../rpc/unix-client.js";
import { daemonCaller, type DaemonCaller } from "./client.js";
import { Images } from "./images.js";
import { Vms } from "./vms.js";
import type { DaemonInfo, Dial, SnapshotInfo } from "./wire-types.js";

export interface ConnectOptions {
  /** The daemon's unix socket; default: what `banger` itself uses (BANGER_SOCKET, else the user's or the installed daemon's). */
  readonly socketPath?: string;
  /** Any other way to reach a daemon; wins over `socketPath` and `context`. */
  readonly dial?: Dial;
  /**
   * A context (`banger context ls`): another host's daemon reached over the user's ssh, or "default"
   * for this host's. Without any of dial, socketPath and context, the CLI's choice applies:
   * BANGER_CONTEXT, else the current context, else the local daemon.
   */
  readonly context?: string;
  /** Send this op id with every call (default: a fresh one per call), to find them in the daemon's log. */
  readonly opId?: string;
}

/** The daemon's snapshots (`vm.snapshot()` makes them, `banger.vms.restore()` starts copies). */
export interface SnapshotsApi {
  list(): Promise<SnapshotInfo[]>;
  get(name: string): Promise<SnapshotInfo>;
  delete(name: string): Promise<void>;
}

/**
 * A client of one banger daemon. Each call opens its own connection, so a Banger holds nothing
 * open and needs no closing; it may be shared by concurrent callers.
 */
export class Banger {
  readonly images: Images;
  readonly vms: Vms;
  readonly snapshots: SnapshotsApi;
  readonly #client: DaemonCaller;

  /** @internal Use `Banger.connect()`. */
  constructor(client: DaemonCaller) {
    this.#client = client;
    this.images = new Images(client);
    this.vms = new Vms(client);
    this.snapshots = {
      list: async () => (await client.call("snapshot.list", {})).snapshots,
      get: (name) => client.call("snapshot.get", { name }),
      delete: async (name) => { await client.call("snapshot.delete", { name }); },
    };
  }

  /** Checks the daemon answers (a BangerError `unavailable` says it does not) and returns a client of it. */
  static async connect(opts: ConnectOptions = {}): Promise<Banger> {
    const dial = opts.dial ?? (opts.socketPath !== undefined ? unixDial(opts.socketPath) : resolveContext(opts.context, resolveLayout(process.env), process.env).dial);
    const banger = new Banger(daemonCaller(dial, opts.opId));
    await banger.ping();
    return banger;
  }

  /** Where this client connects (a socket path or a context's label). */
  get label(): string {
    return this.#client.dial.label;
  }

  ping(): Promise<{ version: string; pid: number }> {
    return this.#client.call("daemon.ping", {});
  }

  /** What `banger system status --json` shows: versions, helper, paths, network, start-up. */
  info(): Promise<DaemonInfo> {
    return this.#client.call("system.info", {});
  }
}
