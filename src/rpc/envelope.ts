import { z } from "zod";
import { ERROR_CODES } from "./errors.js";

export { PROTOCOL_VERSION } from "./protocol.js";

/** op ids are minted as `op-` + hex; accept a little more so older/other clients interoperate. */
export const OP_ID_PATTERN = /^op-[0-9a-z]{6,32}$/;

export const requestSchema = z.object({
  version: z.number().int(),
  method: z.string().min(1).max(128),
  params: z.unknown().optional(),
  op_id: z.string().regex(OP_ID_PATTERN).optional(),
});
export type Request = z.infer<typeof requestSchema>;

export const errorBodySchema = z.object({
  code: z.enum(ERROR_CODES),
  message: z.string(),
  op_id: z.string().optional(),
});
export type ErrorBody = z.infer<typeof errorBodySchema>;

export const responseSchema = z.discriminatedUnion("ok", [
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), error: errorBodySchema }),
]);
export type Response = z.infer<typeof responseSchema>;
