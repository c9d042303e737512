/** What an image says its commands run with (an OCI config's User, Env, WorkingDir). */
export interface ExecDefaults {
  readonly user: string | null;
  readonly env: readonly (readonly [string, string])[];
  readonly workdir: string | null;
}

export const NO_EXEC_DEFAULTS: ExecDefaults = { user: null, env: [], workdir: null };
