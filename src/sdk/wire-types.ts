import type { ResultOf } from "../rpc/descriptor.js";
import type { DaemonMethods } from "../rpc/daemon/methods.js";
import type { ErrorCode as RpcErrorCode } from "../rpc/errors.js";
import type { ExitStatus as RpcExitStatus } from "../rpc/frames.js";
import type { Dial as RpcDial } from "../rpc/unix-client.js";

/**
 * The daemon's views as the SDK hands them out: the JSON `banger ... --json` prints, typed from
 * the methods' schemas (one source of truth). The build (scripts/sdk-types.mjs) writes this
 * module's declarations out in full, so the published types need neither zod nor src/rpc.
 */
export type VmInfo = ResultOf<DaemonMethods["vm.get"]>;
export type VmState = VmInfo["state"];
export type ImageInfo = ResultOf<DaemonMethods["image.get"]>;
export type SnapshotInfo = ResultOf<DaemonMethods["snapshot.get"]>;
export type OperationInfo = ResultOf<DaemonMethods["operation.get"]>;
export type OperationStep = OperationInfo["steps"][number];
export type PublishedPort = ResultOf<DaemonMethods["vm.port_list"]>["ports"][number];
export type VmPorts = ResultOf<DaemonMethods["vm.port_list"]>;
export type VmStats = ResultOf<DaemonMethods["vm.stats"]>;
export type DaemonInfo = ResultOf<DaemonMethods["system.info"]>;
export type ErrorCode = RpcErrorCode;
/** A guest directory entry (`vm.files.list`): name, type, size, permission bits, mtime. */
export type FileEntry = ResultOf<DaemonMethods["vm.file_list"]>["entries"][number];
/** How a command ended: its exit code, or (code null) the signal that killed it, e.g. "KILL". */
export type ExitStatus = { readonly [K in keyof RpcExitStatus]: RpcExitStatus[K] };
/** Opens one connection to a daemon: its unix socket, or a stream to a remote one (a context). Mapped, so the published declaration spells it out. */
export type Dial = { readonly [K in keyof RpcDial]: RpcDial[K] };
