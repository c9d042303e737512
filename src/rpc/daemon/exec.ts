import { z } from "zod";
import { defineMethod } from "../descriptor.js";

/**
 * The exec channel's methods. Each is a streaming method: the request line is
 * answered with the usual ok/error line, and after an ok the same connection
 * carries the binary frames of src/rpc/frames.ts until an `exit` or `error`
 * frame (then the daemon closes it). The ok result says what the daemon
 * opened; what happens next travels in frames.
 *
 * File methods run over exec channels in the guest (cat/rm/a listing script)
 * rather than SFTP: the tiny image has no sftp-server, and the same path
 * then serves every image.
 */
const name = z.string().min(1).max(253);
/** An absolute guest path; NUL cannot cross (the guest's argv could not carry it). */
const guestPath = z.string().min(1).max(4096).regex(/^\/[^\0]*$/, "an absolute path without NUL");
const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const USER = /^(?:[a-z_][a-z0-9_-]{0,31}|[0-9]{1,10})$/;

export const execParams = z
  .object({
    name,
    /** The command's argv, each word passed as is (single-quoted on the guest). */
    argv: z.array(z.string().max(128 * 1024).regex(/^[^\0]*$/, "no NUL")).min(1).max(4096),
    /** Exported before the command runs. */
    env: z.record(z.string().regex(ENV_KEY, "a shell variable name"), z.string().max(128 * 1024).regex(/^[^\0]*$/, "no NUL")).optional(),
    /** Absolute directory the command starts in. */
    cwd: guestPath.optional(),
    /** A user name or numeric uid, switched to with the guest's setpriv (else su). */
    user: z.string().regex(USER, "a user name or a numeric uid").optional(),
    /** Allocate a pty of this size; stdout then carries the terminal and stderr stays empty. */
    tty: z.object({ cols: z.number().int().min(1).max(10_000), rows: z.number().int().min(1).max(10_000) }).strict().optional(),
    /**
     * true: the client will send stdin frames (then stdin-eof). false: the command's stdin is
     * /dev/null-like (EOF at once).
     */
    stdin: z.boolean(),
  })
  .strict();
export type ExecParams = z.input<typeof execParams>;

const opened = z.object({ opened: z.literal(true) });

/** Runs argv in the VM; frames: client → stdin, stdin-eof, signal, resize; daemon → stdout, stderr, exit | error. */
export const vmExecStream = defineMethod("vm.exec", execParams, opened);

/** Streams a guest file's bytes: daemon → stdout frames then exit {code: 0} | error. */
export const vmFileRead = defineMethod("vm.file_read", z.object({ name, path: guestPath }).strict(), opened);

/**
 * Writes (creates or truncates) a guest file: client → stdin frames then stdin-eof; daemon → exit
 * {code: 0} | error once the bytes are on the guest. `mode` (e.g. 0o644) applies to a new file and
 * to an existing one.
 */
export const vmFileWrite = defineMethod("vm.file_write", z.object({ name, path: guestPath, mode: z.number().int().min(0).max(0o7777).optional() }).strict(), opened);

export const fileEntrySchema = z.object({
  name: z.string(),
  type: z.enum(["file", "dir", "symlink", "other"]),
  size: z.number().int(),
  /** Permission bits (0o7777 mask). */
  mode: z.number().int(),
  mtime_ms: z.number(),
});
export type FileEntry = z.output<typeof fileEntrySchema>;

/** A directory's entries (without . and ..); a plain call, no frames. A path that is not a directory lists itself. */
export const vmFileList = defineMethod("vm.file_list", z.object({ name, path: guestPath }).strict(), z.object({ entries: z.array(fileEntrySchema) }));

/** Removes a file (or a directory tree with recursive); a plain call. A missing path is not_found. */
export const vmFileRemove = defineMethod("vm.file_remove", z.object({ name, path: guestPath, recursive: z.boolean().optional() }).strict(), z.object({ removed: z.literal(true) }));
