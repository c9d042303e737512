import { readFileSync } from "node:fs";
import { z } from "zod";
import { writeFileAtomic } from "../system/atomic-write.js";
import { VERSION_PATTERN } from "./layout.js";

export { writeFileAtomic };

const absolute = z.string().regex(/^\/[^\0\n]*$/, "must be an absolute path");

/**
 * /etc/banger/install.json: what `banger system install` decided, read back by `system
 * status|restart|uninstall`, `banger update`, doctor and the CLI. Root's, 0644: the owner reads it
 * but cannot change what root will later act on.
 */
export const installMetadataSchema = z
  .object({
    /** Bumped only with a migration in this file's reader. */
    schema: z.literal(1),
    version: z.string().regex(VERSION_PATTERN, "must be a version name"),
    mode: z.enum(["systemd", "detached"]),
    owner: z.object({ name: z.string().min(1), uid: z.number().int().min(0), gid: z.number().int().min(0) }).strict(),
    /** The node binary the services run under (root's, checked at install). */
    node: absolute,
    paths: z
      .object({
        root: absolute,
        state_dir: absolute,
        runtime_dir: absolute,
        config: absolute,
        helper_socket: absolute,
        daemon_socket: absolute,
        log_dir: absolute,
        lib_dir: absolute,
      })
      .strict(),
    network: z.object({ bridge: z.string().min(1), cidr: z.string().min(1) }).strict(),
    installed_at: z.string(),
  })
  .strict();

export type InstallMetadata = z.output<typeof installMetadataSchema>;

export class InstallMetadataError extends Error {
  override readonly name = "InstallMetadataError";
}

/** The metadata, or undefined when banger is not installed there; a damaged file is an error naming it. */
export function readInstallMetadata(file: string): InstallMetadata | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new InstallMetadataError(`${file}: cannot read: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new InstallMetadataError(`${file}: not valid JSON (${(e as Error).message}); run \`sudo banger system install\` again to rewrite it`);
  }
  const parsed = installMetadataSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join(".") || "(top level)"}: ${i.message}`);
    throw new InstallMetadataError(`${file}: ${issues.join("; ")}; run \`sudo banger system install\` again to rewrite it`);
  }
  return parsed.data;
}

/**
 * Writes the file whole or not at all (temp file, fsync, rename), root's 0644. The directory is
 * root's (install made it), so the temp name cannot be pre-created by the owner.
 */
export function writeInstallMetadata(file: string, meta: InstallMetadata): void {
  writeFileAtomic(file, JSON.stringify(installMetadataSchema.parse(meta), null, 2) + "\n", 0o644);
}

