import { readFile, writeFile } from "node:fs/promises";

/**
 * net.ipv4.ip_forward of the helper's own network namespace (/proc/sys/net is
 * per-netns, so a helper started with `ip netns exec` only changes that namespace).
 */
export interface IpForward {
  get(): Promise<boolean>;
  set(on: boolean): Promise<void>;
}

export function procIpForward(path = "/proc/sys/net/ipv4/ip_forward"): IpForward {
  return {
    async get() {
      return (await readFile(path, "utf8")).trim() === "1";
    },
    async set(on) {
      await writeFile(path, on ? "1\n" : "0\n");
    },
  };
}
