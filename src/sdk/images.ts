import type { ParamsOf } from "../rpc/descriptor.js";
import type { DaemonMethods } from "../rpc/daemon/methods.js";
import type { DaemonCaller } from "./client.js";
import { followOperation } from "./follow.js";
import type { LongOptions } from "./progress.js";
import type { ImageInfo } from "./wire-types.js";

export interface BuildOptions extends LongOptions {
  /** The image's name (1-63 lowercase letters, digits or '-'). */
  readonly name?: string;
  /** `debian:bookworm` (the default), `busybox`, an absolute directory, or an absolute .tar[.gz|.xz|.zst] path. */
  readonly from?: string;
  /** Absolute host paths of a kernel (and initrd) to boot instead of the host's. */
  readonly kernel?: string;
  readonly initrd?: string;
  /** Replace an image of that name. */
  readonly force?: boolean;
}

type BuildParams = ParamsOf<DaemonMethods["image.build"]>;

/** The daemon's images. */
export class Images {
  readonly #client: DaemonCaller;

  /** @internal */
  constructor(client: DaemonCaller) {
    this.#client = client;
  }

  async list(): Promise<ImageInfo[]> {
    return (await this.#client.call("image.list", {})).images;
  }

  get(name: string): Promise<ImageInfo> {
    return this.#client.call("image.get", { name });
  }

  /** Builds an image (minutes for Debian, seconds for busybox) and resolves with it once it is ready. */
  async build(opts: BuildOptions = {}): Promise<ImageInfo> {
    const p: BuildParams = {};
    if (opts.name !== undefined) p.name = opts.name;
    if (opts.from !== undefined) p.from = opts.from;
    if (opts.kernel !== undefined) p.kernel = opts.kernel;
    if (opts.initrd !== undefined) p.initrd = opts.initrd;
    if (opts.force === true) p.force = true;
    const opId = this.#client.opId();
    const ref = await this.#client.call("image.build", p, { timeoutMs: 30_000, signal: opts.signal, opId });
    await followOperation(this.#client, ref.operation_id, { ...opts, opId });
    return this.get(ref.image);
  }

  /** Deletes an image no VM uses. */
  async delete(name: string): Promise<void> {
    await this.#client.call("image.delete", { name });
  }
}
