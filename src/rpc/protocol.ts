/**
 * The wire protocol's version, in a module with no dependencies: the CLI's
 * client needs it without pulling the zod envelope schemas into its bundle.
 */
export const PROTOCOL_VERSION = 1;
