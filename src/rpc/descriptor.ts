import type { z } from "zod";

/**
 * A method's wire contract: its name and the schemas of its params and
 * result. Client and server share the same descriptor, so the types on both
 * sides derive from one definition.
 */
export interface MethodDescriptor<Name extends string = string, P extends z.ZodTypeAny = z.ZodTypeAny, R extends z.ZodTypeAny = z.ZodTypeAny> {
  readonly name: Name;
  readonly params: P;
  readonly result: R;
}

export function defineMethod<Name extends string, P extends z.ZodTypeAny, R extends z.ZodTypeAny>(name: Name, params: P, result: R): MethodDescriptor<Name, P, R> {
  return { name, params, result };
}

export type ParamsOf<D extends MethodDescriptor> = z.input<D["params"]>;
export type ParsedParamsOf<D extends MethodDescriptor> = z.output<D["params"]>;
export type ResultOf<D extends MethodDescriptor> = z.output<D["result"]>;

/**
 * The descriptors a module exports (`typeof import("./vm.js")`), as a union.
 * Distributes over a union of modules so several can be combined at once.
 */
export type DescriptorsIn<NS> = NS extends unknown ? Extract<NS[keyof NS], MethodDescriptor> : never;

/** A union of descriptors keyed by method name, so a caller can say `"vm.list"` and get its types. */
export type MethodsByName<D extends MethodDescriptor> = { [K in D as K["name"]]: K };
