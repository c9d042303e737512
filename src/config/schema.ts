import { z } from "zod";
import { EGRESS_USAGE, parseEgress } from "../model/egress.js";

const ipv4 = z.string().regex(/^((25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])$/, "must be an IPv4 address");

const fileSyncEntry = z
  .object({
    host: z.string().min(1).describe("path under the owner's home directory"),
    guest: z.string().regex(/^\/[^\0\n]*$/, "must be an absolute guest path"),
    mode: z.string().regex(/^0?[0-7]{3,4}$/, "must be an octal mode like 0600").optional(),
  })
  .strict();

/**
 * The config file (TOML). Every key has a default, so an empty or missing
 * file is valid; unknown keys are errors so typos are caught, not ignored.
 */
export const configSchema = z
  .object({
    network: z
      .object({
        bridge: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/, "must be an interface name of at most 15 characters").default("banger0"),
        cidr: z.string().regex(/^[0-9.]+\/(1[6-9]|2[0-9]|30)$/, "must be an IPv4 CIDR with prefix /16../30, e.g. 172.16.90.0/24").default("172.16.90.0/24"),
        dns_listen: z.string().regex(/^[0-9.]+:[0-9]{1,5}$/, "must be IPv4:PORT, e.g. 127.0.0.1:10053").default("127.0.0.1:10053"),
        upstream_dns: z.array(ipv4).optional().describe("where banger's DNS relays names outside .vm (and, with nat off, the resolvers handed to guests); default: the host's /etc/resolv.conf servers"),
        nat: z.boolean().default(true),
        tap_pool_size: z.number().int().min(0).max(64).default(0),
        egress: z
          .string()
          .max(4096)
          .refine((v) => !("error" in parseEgress(v)), { message: EGRESS_USAGE })
          .default("all")
          .describe("egress policy of a VM created without --egress: all, none or allow=LIST (IPv4 addresses, CIDRs, domain names; a domain also allows its subdomains)"),
        isolate: z.boolean().default(false).describe("whether a VM created without --isolate/--no-isolate is cut off from the other VMs on the bridge"),
        protect_host: z
          .boolean()
          .default(true)
          .describe("guests reach no service of the host but banger's DNS (replies to the host's own connections, ssh and published ports still work) and nothing in 169.254.0.0/16"),
        nat_backend: z.enum(["auto", "nftables", "iptables"]).default("auto").describe("auto: nftables when `nft` works, else iptables"),
        host_dns: z
          .enum(["auto", "resolved", "hosts", "none"])
          .default("auto")
          .describe("how the host resolves NAME.vm: resolved = route ~vm to banger's DNS through systemd-resolved; hosts = a managed block in hosts_file; auto = resolved when it runs, else hosts; none = neither"),
        hosts_file: z
          .string()
          .regex(/^(\/[A-Za-z0-9._-]+)+$/, "must be an absolute path of plain names, e.g. /etc/hosts")
          .default("/etc/hosts")
          .describe("the hosts file host_dns = hosts keeps banger's block in; its directory must be root's alone (the helper writes a temp file there and renames it over)"),
      })
      .strict()
      .default({}),
    vmm: z
      .object({
        kind: z.enum(["auto", "firecracker", "qemu"]).default("auto"),
        accel: z.enum(["auto", "kvm", "tcg"]).default("auto"),
        firecracker_bin: z.string().min(1).default("firecracker"),
        jailer_bin: z.string().min(1).default("jailer"),
        qemu_bin: z.string().min(1).default("qemu-system-x86_64"),
        stop_timeout_s: z.number().int().min(1).max(600).default(20),
        /** How long VM create/start waits for the guest to be ssh-ready (TCG boots of many VMs at once are slow). */
        boot_timeout_s: z.number().int().min(5).max(3600).default(180),
        jailer: z.enum(["auto", "always", "never"]).default("auto").describe("run firecracker under the jailer: auto = when jailer_bin is found"),
        jail_dir: z
          .string()
          .regex(/^(\/[A-Za-z0-9._-]+)+$/, "must be an absolute path of plain names, e.g. /srv/jailer")
          .default("/srv/jailer")
          .describe("the jailer's --chroot-base-dir: root's alone (the helper refuses it otherwise), on the state dir's filesystem, since jails hard-link a VM's disks"),
      })
      .strict()
      .default({}),
    defaults: z
      .object({
        image: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be an image name").default("default"),
        vcpus: z.number().int().min(1).max(32).default(2),
        memory_mib: z.number().int().min(128).max(65536).default(1024),
        disk_gib: z.number().int().min(1).max(1024).default(8),
      })
      .strict()
      .default({}),
    storage: z
      .object({
        clone_strategy: z.enum(["auto", "dm-snapshot", "reflink", "copy"]).default("auto"),
      })
      .strict()
      .default({}),
    /**
     * What the root helper runs to parse ext4 it did not write (debugfs,
     * e2fsck): as the owner, through setpriv. Read by the helper from its
     * root-owned config only; each must be root's alone (roothelper/fs/trust.ts).
     */
    tools: z
      .object({
        setpriv_bin: z.string().min(1).default("setpriv").describe("util-linux setpriv: drops to the owner with no_new_privs before a parser runs"),
        debugfs_bin: z.string().min(1).default("debugfs"),
        e2fsck_bin: z.string().min(1).default("e2fsck"),
      })
      .strict()
      .default({}),
    file_sync: z.array(fileSyncEntry).default([]),
  })
  .strict();

export type Config = z.output<typeof configSchema>;
export type FileSyncEntry = z.output<typeof fileSyncEntry>;
