import { z } from "zod";
import { defineMethod } from "../descriptor.js";
import { portSchema } from "./ports.js";

/** A VM as clients see it (`vm show --json`, `vm list --json`). */
export const vmViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  dns_name: z.string(),
  state: z.enum(["creating", "stopped", "starting", "running", "paused", "stopping", "error"]),
  image: z.string(),
  vcpus: z.number().int(),
  memory_mib: z.number().int(),
  disk_gib: z.number().int(),
  vmm: z.string(),
  ip: z.string().nullable(),
  mac: z.string().nullable(),
  tap: z.string().nullable(),
  pid: z.number().int().nullable(),
  created_at: z.string(),
  started_at: z.string().nullable(),
  uptime_s: z.number().nullable(),
  last_error: z.string().nullable(),
  console_log: z.string().nullable(),
  /** Egress policy as `vm egress set` takes it (all, none, allow=LIST), and whether the VM is cut off from the other VMs. */
  egress: z.object({ policy: z.string(), isolate: z.boolean() }),
  /** Published ports (vm port add). */
  ports: z.array(portSchema),
  /** What a client needs to ssh in itself (vm ssh / vm exec run the system ssh client). */
  ssh: z.object({ user: z.string(), key_path: z.string(), known_hosts_path: z.string() }),
});
export type VmView = z.output<typeof vmViewSchema>;

const name = z.string().min(1).max(253);
const byName = z.object({ name }).strict();
const operationRef = z.object({ operation_id: z.string(), vm: z.object({ id: z.string(), name: z.string() }) });

export const vmCreateParams = z
  .object({
    name: z.string().optional(),
    image: z.string().optional(),
    vcpus: z.number().int().optional(),
    memory_mib: z.number().int().optional(),
    disk_gib: z.number().int().optional(),
    /** Boot even when the image has a warm template (image warm). */
    cold: z.boolean().optional(),
    ports: z.array(portSchema).max(64).optional(),
    /** all, none or allow=LIST; default: network.egress. */
    egress: z.string().max(4096).optional(),
    /** Default: network.isolate. */
    isolate: z.boolean().optional(),
    /** Grow the root disk to this many GiB (`--root-size`); a grown root boots cold. */
    root_gib: z.number().int().optional(),
  })
  .strict();

/** Returns at once; follow progress with operation.get(operation_id). */
export const vmCreate = defineMethod("vm.create", vmCreateParams, operationRef);
/** `changed: false`: the VM was already running; `operation_id` then names no operation. */
export const vmStart = defineMethod("vm.start", byName, operationRef.extend({ changed: z.literal(false).optional() }));
export const vmRestart = defineMethod("vm.restart", z.object({ name, force: z.boolean().optional() }).strict(), operationRef);
/** Freeze a running VM (no vCPU runs; memory, lease and DNS name kept) / thaw a paused one. `changed`: false when it already was. */
const pauseResult = z.object({ vm: vmViewSchema, changed: z.boolean() });
export const vmPause = defineMethod("vm.pause", byName, pauseResult);
export const vmResume = defineMethod("vm.resume", byName, pauseResult);
/** `changed: false`: the VM was already stopped (not an error, as `docker stop`). */
export const vmStop = defineMethod("vm.stop", z.object({ name, force: z.boolean().optional() }).strict(), vmViewSchema.extend({ changed: z.literal(false).optional() }));
export const vmDelete = defineMethod("vm.delete", z.object({ name, force: z.boolean().optional() }).strict(), z.object({ id: z.string(), name: z.string(), deleted: z.literal(true) }));
/** Grows a stopped VM's root and/or work disk (GiB); answers with the VM as it now is. */
export const vmResize = defineMethod("vm.resize", z.object({ name, root_gib: z.number().int().optional(), work_gib: z.number().int().optional() }).strict(), vmViewSchema);
export const vmList = defineMethod("vm.list", z.object({}).strict(), z.object({ vms: z.array(vmViewSchema) }));
export const vmGet = defineMethod("vm.get", byName, vmViewSchema);

/** A chunk of the console log from `offset`; `data` is base64 so any bytes survive JSON. */
export const vmLogs = defineMethod(
  "vm.logs",
  z.object({ name, offset: z.number().int().min(0).optional(), max_bytes: z.number().int().min(1).max(4 * 1024 * 1024).optional(), tail_bytes: z.number().int().min(1).max(4 * 1024 * 1024).optional(), /** Start at the first of the last N lines (whole lines). */ tail_lines: z.number().int().min(1).max(100_000).optional() }).strict(),
  z.object({ path: z.string(), data: z.string(), offset: z.number().int(), next_offset: z.number().int(), size: z.number().int(), state: z.string() }),
);

export const vmStats = defineMethod(
  "vm.stats",
  byName,
  z.object({
    name: z.string(),
    state: z.string(),
    pid: z.number().int().nullable(),
    /** Average since the VMM started. */
    cpu_percent: z.number().nullable(),
    /** Over the last second (0 while paused). */
    cpu_percent_recent: z.number().nullable(),
    rss_bytes: z.number().nullable(),
    uptime_s: z.number().nullable(),
    vcpus: z.number().int(),
    memory_mib: z.number().int(),
    disk: z.object({ root_allocated_bytes: z.number(), work_allocated_bytes: z.number(), work_size_bytes: z.number() }),
    /** What the guest's own kernel reports (read over ssh); null with `guest_error` saying why when it could not be read. */
    guest: z.object({
      memory: z.object({ total_bytes: z.number(), available_bytes: z.number(), used_bytes: z.number() }),
      disks: z.array(z.object({ mount: z.string(), size_bytes: z.number(), used_bytes: z.number(), available_bytes: z.number() })),
    }).nullable(),
    guest_error: z.string().nullable(),
  }),
);
