import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/** A snapshot as clients see it (`snapshot ls --json`, `snapshot show --json`). */
export const snapshotViewSchema = z.object({
  id: z.string(),
  name: z.string(),
  kind: z.enum(["user", "fork", "template"]),
  state: z.enum(["saving", "ready"]),
  source_vm: z.string(),
  image: z.string(),
  vcpus: z.number().int(),
  memory_mib: z.number().int(),
  disk_gib: z.number().int(),
  vmm: z.string(),
  vmm_version: z.string(),
  /** Bytes of saved device and memory state (the disks are clones and share blocks where reflink works). */
  state_bytes: z.number().int(),
  host_key_pub: z.string(),
  dir: z.string(),
  created_at: z.string(),
});
export type SnapshotView = z.output<typeof snapshotViewSchema>;

const name = z.string().min(1).max(253);
const operationRef = z.object({ operation_id: z.string(), vm: z.object({ id: z.string(), name: z.string() }) });

/** Snapshot a running or paused VM (it keeps running); answers once the snapshot is complete. */
export const vmSnapshot = defineMethod("vm.snapshot", z.object({ name, snapshot: name.optional() }).strict(), snapshotViewSchema);
/** A new VM in a snapshot's state; follow it with operation.get like vm.create. */
export const vmRestore = defineMethod("vm.restore", z.object({ snapshot: name, name: name.optional() }).strict(), operationRef);
/** Snapshot a running VM and start `count` copies of it; one operation per copy. */
export const vmFork = defineMethod(
  "vm.fork",
  z.object({ name, fork_name: name.optional(), count: z.number().int().optional() }).strict(),
  z.object({ snapshot: z.string(), operations: z.array(operationRef) }),
);
export const snapshotList = defineMethod("snapshot.list", z.object({}).strict(), z.object({ snapshots: z.array(snapshotViewSchema) }));
export const snapshotGet = defineMethod("snapshot.get", z.object({ name }).strict(), snapshotViewSchema);
export const snapshotDelete = defineMethod("snapshot.delete", z.object({ name }).strict(), z.object({ name: z.string(), deleted: z.literal(true) }));
/** Boot the image once and keep a snapshot of it ready, so `vm create` of that image and size restores instead of booting. */
export const imageWarm = defineMethod(
  "image.warm",
  z.object({ name, vcpus: z.number().int().optional(), memory_mib: z.number().int().optional(), disk_gib: z.number().int().optional() }).strict(),
  snapshotViewSchema,
);
