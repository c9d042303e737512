import { lookupAccount } from "../../src/install/owner.js";
import { systemRunner } from "../../src/system/runner.js";

export interface TestUser {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** The non-root user tests run the daemon as (production runs bangerd as its owner, never root). */
export const TEST_USER = "banger-test";

const lookup = (name: string): TestUser | undefined => lookupAccount(name);

/** Creates the test user (with a home dir and subordinate ids for unshare) if missing; needs root. */
export async function ensureTestUser(name = TEST_USER): Promise<TestUser> {
  const existing = lookup(name);
  if (existing !== undefined) return existing;
  await systemRunner.run(["useradd", "--create-home", "--shell", "/bin/bash", name], { okExitCodes: [9] });
  const created = lookup(name);
  if (created === undefined) throw new Error(`useradd ${name} did not create the user`);
  return created;
}
