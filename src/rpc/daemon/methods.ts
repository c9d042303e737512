import type { DescriptorsIn, MethodsByName } from "../descriptor.js";
import type * as exec from "./exec.js";
import type * as image from "./image.js";
import type * as operation from "./operation.js";
import type * as ports from "./ports.js";
import type * as snapshot from "./snapshot.js";
import type * as system from "./system.js";
import type * as vm from "./vm.js";

/**
 * Every daemon method by name, types only. The CLI calls methods by name with
 * these types and never loads the zod schemas at runtime (they cost most of
 * its start-up); the daemon validates params against them (and, in tests, results).
 */
export type DaemonMethods = MethodsByName<DescriptorsIn<typeof exec | typeof image | typeof operation | typeof ports | typeof snapshot | typeof system | typeof vm>>;
export type DaemonMethodName = keyof DaemonMethods;
