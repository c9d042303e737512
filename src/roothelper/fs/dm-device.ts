import { closeSync, constants, fstatSync, openSync, type Stats } from "node:fs";
import { RpcError } from "../../rpc/errors.js";
import { O_PATH } from "../../system/dirfd-calls.js";
import { dmDevicePath } from "../validate.js";
import type { Access } from "./beneath.js";

const ACCESS_FLAGS: Record<Access, number> = { read: constants.O_RDONLY, readwrite: constants.O_RDWR, append: constants.O_WRONLY | constants.O_APPEND };

/**
 * A banger dm snapshot device, /dev/mapper/fc-rootfs-*. Reached by name:
 * /dev and /dev/mapper are root's (udev's symlink to /dev/dm-N is followed,
 * and nothing there is the owner's), judged on an O_PATH descriptor (a
 * block device, nothing else) and reopened through it.
 */
export function openDmDevice(field: string, path: string, access: Access): { fd: number; stat: Stats } {
  dmDevicePath(field, path);
  let pathFd: number;
  try {
    pathFd = openSync(path, O_PATH);
  } catch {
    throw new RpcError("not_found", `${field}: ${path} does not exist`);
  }
  try {
    const st = fstatSync(pathFd);
    if (!st.isBlockDevice()) throw new RpcError("bad_params", `${field}: ${path} is not a block device`);
    const fd = openSync(`/proc/self/fd/${pathFd}`, ACCESS_FLAGS[access] | constants.O_NOCTTY);
    return { fd, stat: fstatSync(fd) };
  } finally {
    closeSync(pathFd);
  }
}
