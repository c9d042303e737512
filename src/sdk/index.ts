/**
 * banger's SDK: `import { Banger } from "banger"`. See the README's "SDK" section.
 */
export { Banger, type ConnectOptions, type SnapshotsApi } from "./banger.js";
export { BangerError, isBangerError } from "./errors.js";
export { ExecFailedError, type ExecOptions, type ExecProcess, type ExecResult, type Input } from "./exec.js";
export type { VmFiles } from "./files.js";
export type { BuildOptions, Images } from "./images.js";
export type { PortMapping } from "./ports.js";
export type { LongOptions, ProgressEvent } from "./progress.js";
export { Vm, type VmPortsApi } from "./vm.js";
export type { CreateOptions, Vms } from "./vms.js";
export type { EgressPolicy, EgressState, VmEgressApi } from "./egress.js";
export type * from "./wire-types.js";
