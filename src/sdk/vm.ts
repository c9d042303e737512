import type { DaemonCaller } from "./client.js";
import type { VmEgressApi } from "./egress.js";
import { vmEgress } from "./vm-egress.js";
import { isBangerError } from "./errors.js";
import type { ExecOptions, ExecProcess } from "./exec.js";
import { execText, startExec } from "./exec-run.js";
import type { VmFiles } from "./files.js";
import { vmFiles } from "./vm-files.js";
import { portsParam, type PortMapping } from "./ports.js";
import { followOperation } from "./follow.js";
import type { LongOptions } from "./progress.js";
import type { SnapshotInfo, VmInfo, VmPorts, VmStats } from "./wire-types.js";

/** A graceful stop may take the configured stop timeout (up to 600 s) before the kill. */
const STOP_TIMEOUT_MS = 660_000;
/** Starting an operation answers at once; only following it takes long. */
const BEGIN_TIMEOUT_MS = 30_000;

/** The ports published for one VM (kept across stop/start; live at once on a running VM). */
export interface VmPortsApi {
  list(): Promise<VmPorts>;
  add(...ports: PortMapping[]): Promise<VmPorts>;
  /** Removes the mappings with these host address, port and protocol (the guest port is ignored). */
  remove(...ports: PortMapping[]): Promise<VmPorts>;
}

/**
 * One VM. `info` is the daemon's view as last fetched (`refresh()` fetches it again; every
 * lifecycle call updates it). `await using vm = await banger.vms.create(...)` deletes the VM when
 * the scope ends, however it ends.
 */
export class Vm implements AsyncDisposable {
  readonly name: string;
  readonly ports: VmPortsApi;
  /** What the guest may reach (`vm egress set|show`). */
  readonly egress: VmEgressApi;
  readonly files: VmFiles;
  #info: VmInfo;
  readonly #client: DaemonCaller;

  /** @internal Made by `banger.vms`; not meant to be constructed by callers. */
  constructor(client: DaemonCaller, info: VmInfo) {
    this.#client = client;
    this.#info = info;
    this.name = info.name;
    const name = this.name;
    const opId = (): string => client.opId();
    this.files = vmFiles(client, name);
    this.egress = vmEgress(client, name);
    this.ports = {
      list: () => client.call("vm.port_list", { name }),
      add: (...ports) => client.call("vm.port_add", { name, ports: portsParam(ports, opId()) }),
      remove: (...ports) => client.call("vm.port_rm", { name, ports: portsParam(ports, opId()) }),
    };
  }

  get info(): VmInfo {
    return this.#info;
  }

  get id(): string {
    return this.#info.id;
  }

  get state(): VmInfo["state"] {
    return this.#info.state;
  }

  /** The guest's address on the host bridge (null while it has none). */
  get ip(): string | null {
    return this.#info.ip;
  }

  /** NAME.vm, resolvable on the host. */
  get dnsName(): string {
    return this.#info.dns_name;
  }

  async refresh(): Promise<VmInfo> {
    this.#info = await this.#client.call("vm.get", { name: this.name });
    return this.#info;
  }

  /** Starts a stopped VM and resolves once it is ssh-ready. */
  async start(opts: LongOptions = {}): Promise<this> {
    const ref = await this.#client.call("vm.start", { name: this.name }, { timeoutMs: BEGIN_TIMEOUT_MS, signal: opts.signal });
    await followOperation(this.#client, ref.operation_id, opts);
    await this.refresh();
    return this;
  }

  /** Stops and starts it again (`force`: kill instead of a graceful stop). */
  async restart(opts: LongOptions & { readonly force?: boolean } = {}): Promise<this> {
    const ref = await this.#client.call("vm.restart", { name: this.name, ...(opts.force === true ? { force: true } : {}) }, { timeoutMs: BEGIN_TIMEOUT_MS, signal: opts.signal });
    await followOperation(this.#client, ref.operation_id, opts);
    await this.refresh();
    return this;
  }

  /** Graceful (killed after the daemon's stop timeout); `force` kills at once. */
  async stop(opts: { readonly force?: boolean } = {}): Promise<this> {
    this.#info = await this.#client.call("vm.stop", { name: this.name, ...(opts.force === true ? { force: true } : {}) }, { timeoutMs: STOP_TIMEOUT_MS });
    return this;
  }

  /** Freezes every vCPU (memory, address and name kept). */
  async pause(): Promise<this> {
    this.#info = (await this.#client.call("vm.pause", { name: this.name })).vm;
    return this;
  }

  async resume(): Promise<this> {
    this.#info = (await this.#client.call("vm.resume", { name: this.name })).vm;
    return this;
  }

  /** Deletes the VM and its disks. A running VM is killed first unless `force: false` (then deleting it is a `conflict`). */
  async delete(opts: { readonly force?: boolean } = {}): Promise<void> {
    await this.#client.call("vm.delete", { name: this.name, force: opts.force ?? true }, { timeoutMs: STOP_TIMEOUT_MS });
  }

  /** Saves the running (or paused) VM's state; it keeps running. `banger.vms.restore(name)` starts a copy. */
  snapshot(name?: string): Promise<SnapshotInfo> {
    return this.#client.call("vm.snapshot", { name: this.name, ...(name !== undefined ? { snapshot: name } : {}) }, { timeoutMs: STOP_TIMEOUT_MS });
  }

  /**
   * Runs argv in the VM (each word passed as is, no shell) and resolves once it runs; stream its
   * output from `stdout`/`stderr` or the callbacks, and await `exit` for its code or signal.
   */
  exec(argv: readonly string[], opts: ExecOptions = {}): Promise<ExecProcess> {
    return startExec(this.#client, this.name, argv, opts);
  }

  /** The common case: argv's stdout as text; a non-zero exit rejects with ExecFailedError carrying all output. */
  execText(argv: readonly string[], opts: ExecOptions = {}): Promise<string> {
    return execText(this.#client, this.name, argv, opts);
  }

  stats(): Promise<VmStats> {
    return this.#client.call("vm.stats", { name: this.name });
  }

  /** `await using`: delete at scope end; a VM that is already gone is no error. */
  async [Symbol.asyncDispose](): Promise<void> {
    try {
      await this.delete({ force: true });
    } catch (e) {
      if (!(isBangerError(e) && e.code === "not_found")) throw e;
    }
  }
}
