import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/** Same rule as config defaults.image: the name becomes a directory under the state dir. */
const imageName = z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, "must be 1-63 lowercase letters, digits or '-'");
/** Host paths the daemon (running as the owner) reads; it resolves and checks them itself. */
const hostPath = z.string().min(1).max(4096).refine((p) => p.startsWith("/") && !p.includes("\0"), "must be an absolute path");

export const imageView = z.object({
  name: z.string(),
  source: z.string(),
  flavor: z.enum(["systemd", "busybox"]),
  kernel_path: z.string(),
  vmlinux_path: z.string().nullable(),
  initrd_path: z.string().nullable(),
  rootfs_path: z.string(),
  kernel_version: z.string().nullable(),
  size_bytes: z.number(),
  created_at: z.string(),
  used_by: z.array(z.string()),
  /** What `vm exec`/`vm ssh` run as, with and in unless told otherwise (from an OCI image's config). */
  exec_defaults: z.object({ user: z.string().nullable(), env: z.array(z.tuple([z.string(), z.string()])), workdir: z.string().nullable() }),
});
export type ImageView = z.output<typeof imageView>;

export const imageBuildParams = z.object({
  name: imageName.optional(),
  /** debian:bookworm (default), busybox, oci-archive:ABSPATH, an absolute directory, or an absolute .tar[.gz|.xz|.zst] path. */
  from: z.string().min(1).max(4096).optional(),
  kernel: hostPath.optional(),
  initrd: hostPath.optional(),
  force: z.boolean().optional(),
}).strict();

export const imageBuild = defineMethod("image.build", imageBuildParams, z.object({ operation_id: z.string(), image: z.string() }));
export const imageList = defineMethod("image.list", z.object({}).strict(), z.object({ images: z.array(imageView) }));
export const imageGet = defineMethod("image.get", z.object({ name: imageName }).strict(), imageView);
export const imageDelete = defineMethod("image.delete", z.object({ name: imageName }).strict(), z.object({ name: z.string(), deleted: z.literal(true) }));
export const imageImport = defineMethod(
  "image.import",
  z.object({ name: imageName, kernel: hostPath, rootfs: hostPath, initrd: hostPath.optional(), flavor: z.enum(["systemd", "busybox"]).optional(), force: z.boolean().optional() }).strict(),
  imageView,
);
