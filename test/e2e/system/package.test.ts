import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { VERSION } from "../../../src/version.js";
import { needsCommands, requires } from "../../helpers/requirements.js";

const REPO = resolve(import.meta.dirname, "..", "..", "..", "..");

void test("npm pack gives a tarball that npm install -g turns into banger, bangerd and bangerd-root: no build step, no dev dependency", { skip: requires(needsCommands("npm")), timeout: 600_000 }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "banger-pack-"));
  t.after(() => { rmSync(tmp, { recursive: true, force: true }); });
  // --ignore-scripts: dist/ is already built (these tests run from it) and prepack's rebuild would replace it under them.
  const name = (await runText(systemRunner, ["npm", "pack", "--ignore-scripts", "--silent", "--pack-destination", tmp], { cwd: REPO })).trim().split("\n").pop() ?? "";
  assert.equal(name, `banger-${VERSION}.tgz`);
  const prefix = join(tmp, "prefix");
  // Offline and without scripts: everything it runs is in the tarball, native addons included.
  await systemRunner.run(["npm", "install", "-g", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", "--prefix", prefix, join(tmp, name)]);
  assert.match(await runText(systemRunner, [join(prefix, "bin", "banger"), "--version"]), new RegExp(`^banger ${VERSION.replaceAll(".", "\\.")} `));
  assert.match(await runText(systemRunner, [join(prefix, "bin", "bangerd"), "--help"]), /^usage: bangerd/);
  assert.match(await runText(systemRunner, [join(prefix, "bin", "bangerd-root"), "--help"]), /^usage: bangerd-root/);
  const pkg = join(prefix, "lib", "node_modules", "banger");
  const modules = readdirSync(join(pkg, "node_modules"));
  for (const dev of ["typescript", "eslint", "esbuild", "@types", "zod", "smol-toml", "dns-packet"]) assert.ok(!modules.includes(dev), `${dev} is not shipped (dev only, or bundled)`);
  assert.deepEqual(readdirSync(join(pkg, "dist")), ["bin"], "only the bundles, not the compiled tests");
  // The daemon's native dependency loads from the installed copy.
  assert.equal(await runText(systemRunner, [process.execPath, "-e", "const D = require(process.argv[1]); console.log(new D(':memory:').prepare('select 41 + 1 as x').get().x)", join(pkg, "node_modules", "better-sqlite3")]), "42");
});
