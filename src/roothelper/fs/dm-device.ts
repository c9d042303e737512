import { closeSync, constants, fstatSync, openSync, readdirSync, readFileSync, type Stats } from "node:fs";
import { sep } from "node:path";
import { RpcError } from "../../rpc/errors.js";
import { O_PATH } from "../../system/dirfd-calls.js";
import { dmDevicePath } from "../validate.js";
import type { Access } from "./beneath.js";
import { realPathOf, type ManagedRoot } from "./managed-root.js";

const ACCESS_FLAGS: Record<Access, number> = { read: constants.O_RDONLY, readwrite: constants.O_RDWR, append: constants.O_WRONLY | constants.O_APPEND };

/** The backing file of /dev/loopN per sysfs, or undefined when the device is not attached. */
export function loopBackingFile(loop: string, sysRoot = "/sys"): string | undefined {
  const n = loop.slice("/dev/".length);
  try {
    // The kernel appends " (deleted)" once the file is unlinked; it is still the same file.
    return readFileSync(`${sysRoot}/block/${n}/loop/backing_file`, "utf8").trim().replace(/ \(deleted\)$/, "");
  } catch {
    return undefined;
  }
}

/**
 * Why block device `rdev` is not the snapshot `name` this helper made of the
 * owner's files (undefined when it is): a dm target of that name stacked
 * only on loop devices whose backing files lie in `stateDir` (the state
 * dir's real path). Another owner's snapshot (another helper, another state
 * dir) and any other dm device fail it. Read from sysfs for the device
 * number of a descriptor the caller holds open, so the number cannot be
 * given to another device meanwhile, nor its loops detached.
 */
export function notOwnSnapshot(rdev: number, name: string, stateDir: string, sysRoot = "/sys"): string | undefined {
  const dev = `${sysRoot}/dev/block/${(rdev >>> 8) & 0xfff}:${(rdev & 0xff) | ((rdev >>> 12) & 0xfff00)}`;
  let dmName: string;
  let slaves: string[];
  try {
    dmName = readFileSync(`${dev}/dm/name`, "utf8").trim();
    slaves = readdirSync(`${dev}/slaves`);
  } catch {
    return "is not a device-mapper device";
  }
  if (dmName !== name) return `is dm target ${dmName}, not ${name}`;
  if (slaves.length === 0) return "has no underlying devices";
  for (const s of slaves) {
    if (!/^loop[0-9]+$/.test(s)) return `is stacked on ${s}, not only on loop devices`;
    const backing = loopBackingFile(`/dev/${s}`, sysRoot);
    if (backing === undefined || !backing.startsWith(stateDir + sep)) return `is stacked on /dev/${s}, backed by ${backing ?? "nothing"}, not by a file in ${stateDir}`;
  }
  return undefined;
}

/**
 * A banger dm snapshot device, /dev/mapper/fc-rootfs-*, of this owner's.
 * Reached by name: /dev and /dev/mapper are root's (udev's symlink to
 * /dev/dm-N is followed, and nothing there is the owner's), judged on an
 * O_PATH descriptor (a block device, nothing else) and reopened through it.
 * The name pattern alone would let one owner name another owner's VM disk,
 * so the opened device (which pins its number and loops) must be a snapshot
 * of files in `state` (notOwnSnapshot).
 */
export function openDmDevice(field: string, path: string, access: Access, state: ManagedRoot): { fd: number; stat: Stats } {
  dmDevicePath(field, path);
  let pathFd: number;
  try {
    pathFd = openSync(path, O_PATH);
  } catch {
    throw new RpcError("not_found", `${field}: ${path} does not exist`);
  }
  try {
    if (!fstatSync(pathFd).isBlockDevice()) throw new RpcError("bad_params", `${field}: ${path} is not a block device`);
    const fd = openSync(`/proc/self/fd/${pathFd}`, ACCESS_FLAGS[access] | constants.O_NOCTTY);
    const stat = fstatSync(fd);
    const why = notOwnSnapshot(stat.rdev, path.slice("/dev/mapper/".length), realPathOf(state));
    if (why !== undefined) {
      closeSync(fd);
      throw new RpcError("bad_params", `${field}: ${path} ${why}: only this owner's own VM snapshots are used`);
    }
    return { fd, stat };
  } finally {
    closeSync(pathFd);
  }
}
