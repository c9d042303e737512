import type { ParamsOf } from "../rpc/descriptor.js";
import type { DaemonMethods } from "../rpc/daemon/methods.js";
import type { DaemonCaller } from "./client.js";
import { egressText, type EgressPolicy } from "./egress.js";
import { portsParam, type PortMapping } from "./ports.js";
import { followOperation } from "./follow.js";
import type { LongOptions } from "./progress.js";
import { Vm } from "./vm.js";

const BEGIN_TIMEOUT_MS = 30_000;

export interface CreateOptions extends LongOptions {
  /** An image name (`banger.images.list()`); the daemon's default image when omitted. */
  readonly image?: string;
  /** A DNS label; the daemon picks one when omitted. */
  readonly name?: string;
  readonly vcpus?: number;
  readonly memoryMib?: number;
  readonly diskGib?: number;
  readonly ports?: readonly PortMapping[];
  /** What the guest may reach; the daemon's configured default (network.egress) when omitted. */
  readonly egress?: EgressPolicy;
  /** Cut the VM off from the other VMs on the bridge; network.isolate when omitted. */
  readonly isolate?: boolean;
  /** Boot even when the image has a warm template. */
  readonly cold?: boolean;
}

type CreateParams = ParamsOf<DaemonMethods["vm.create"]>;

function createParams(o: CreateOptions, opId: string): CreateParams {
  const p: CreateParams = {};
  if (o.image !== undefined) p.image = o.image;
  if (o.name !== undefined) p.name = o.name;
  if (o.vcpus !== undefined) p.vcpus = o.vcpus;
  if (o.memoryMib !== undefined) p.memory_mib = o.memoryMib;
  if (o.diskGib !== undefined) p.disk_gib = o.diskGib;
  if (o.cold === true) p.cold = true;
  if (o.egress !== undefined) p.egress = egressText(o.egress);
  if (o.isolate !== undefined) p.isolate = o.isolate;
  if (o.ports !== undefined && o.ports.length > 0) p.ports = portsParam(o.ports, opId);
  return p;
}

/** The daemon's VMs. */
export class Vms {
  readonly #client: DaemonCaller;

  /** @internal */
  constructor(client: DaemonCaller) {
    this.#client = client;
  }

  /**
   * Creates a VM and resolves once it is ssh-ready. Aborting (`signal`) deletes the half-made VM
   * before the promise rejects with the signal's reason; a failed create leaves nothing behind.
   */
  async create(opts: CreateOptions = {}): Promise<Vm> {
    const opId = this.#client.opId();
    const ref = await this.#client.call("vm.create", createParams(opts, opId), { timeoutMs: BEGIN_TIMEOUT_MS, signal: opts.signal, opId });
    return this.#becomeReady(ref.operation_id, ref.vm.name, opts, opId);
  }

  /** A new VM in a snapshot's saved state (memory included); resolves once it is ssh-ready. */
  async restore(snapshot: string, opts: LongOptions & { readonly name?: string } = {}): Promise<Vm> {
    const opId = this.#client.opId();
    const ref = await this.#client.call("vm.restore", { snapshot, ...(opts.name !== undefined ? { name: opts.name } : {}) }, { timeoutMs: BEGIN_TIMEOUT_MS, signal: opts.signal, opId });
    return this.#becomeReady(ref.operation_id, ref.vm.name, opts, opId);
  }

  /** `count` copies of a running VM (snapshotted once), each ssh-ready when this resolves. */
  async fork(name: string, opts: LongOptions & { readonly count?: number; readonly forkName?: string } = {}): Promise<Vm[]> {
    const opId = this.#client.opId();
    const r = await this.#client.call("vm.fork", { name, ...(opts.count !== undefined ? { count: opts.count } : {}), ...(opts.forkName !== undefined ? { fork_name: opts.forkName } : {}) }, { timeoutMs: BEGIN_TIMEOUT_MS, signal: opts.signal, opId });
    const settled = await Promise.allSettled(r.operations.map((ref) => this.#becomeReady(ref.operation_id, ref.vm.name, opts, opId)));
    const failed = settled.find((s) => s.status === "rejected");
    if (failed !== undefined) {
      // All or nothing: the copies that did come up are deleted too, so a failed fork leaves none.
      await Promise.allSettled(settled.map((s) => (s.status === "fulfilled" ? s.value.delete({ force: true }) : Promise.resolve())));
      throw failed.reason;
    }
    return settled.map((s) => (s as PromiseFulfilledResult<Vm>).value);
  }

  async get(name: string): Promise<Vm> {
    return new Vm(this.#client, await this.#client.call("vm.get", { name }));
  }

  async list(): Promise<Vm[]> {
    return (await this.#client.call("vm.list", {})).vms.map((v) => new Vm(this.#client, v));
  }

  async #becomeReady(operationId: string, name: string, opts: LongOptions, opId: string): Promise<Vm> {
    try {
      await followOperation(this.#client, operationId, { ...opts, opId });
    } catch (e) {
      // Given up on: take the VM away (a forced delete also cancels the create's running step).
      if (opts.signal?.aborted === true) await this.#client.call("vm.delete", { name, force: true }, { opId, timeoutMs: BEGIN_TIMEOUT_MS * 2 }).catch(() => undefined);
      throw e;
    }
    return new Vm(this.#client, await this.#client.call("vm.get", { name }, { opId }));
  }
}
