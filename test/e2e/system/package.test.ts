import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { CommandError, runText, systemRunner } from "../../../src/system/runner.js";
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
  assert.deepEqual(readdirSync(join(pkg, "dist")), ["bin", "sdk"], "only the bundles and the SDK, not the compiled tests");
  // The daemon's native dependency loads from the installed copy.
  assert.equal(await runText(systemRunner, [process.execPath, "-e", "const D = require(process.argv[1]); console.log(new D(':memory:').prepare('select 41 + 1 as x').get().x)", join(pkg, "node_modules", "better-sqlite3")]), "42");
});

void test("the packed tarball is a library too: import and require of \"banger\" give the SDK, and its types compile without zod or the sources", { skip: requires(needsCommands("npm")), timeout: 600_000 }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), "banger-sdk-pack-"));
  t.after(() => { rmSync(tmp, { recursive: true, force: true }); });
  const name = (await runText(systemRunner, ["npm", "pack", "--ignore-scripts", "--silent", "--pack-destination", tmp], { cwd: REPO })).trim().split("\n").pop() ?? "";
  const app = join(tmp, "app");
  mkdirSync(app);
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
  await systemRunner.run(["npm", "install", "--offline", "--ignore-scripts", "--no-audit", "--no-fund", join(tmp, name)], { cwd: app });
  // A daemon that is not there: the SDK loads, connects, and fails with its typed error.
  const probe = `const r = await Banger.connect({ socketPath: "/nonexistent/b.sock" }).then(() => "connected", (e) => [e instanceof BangerError, e.code, typeof e.opId].join(" ")); console.log(r);`;
  assert.equal((await runText(systemRunner, [process.execPath, "--input-type=module", "-e", `import { Banger, BangerError } from "banger"; ${probe}`], { cwd: app })).trim(), "true unavailable string");
  assert.equal((await runText(systemRunner, [process.execPath, "-e", `const { Banger, BangerError } = require("banger"); (async () => { ${probe} })()`], { cwd: app })).trim(), "true unavailable string");
  // The published declarations: a consumer typed against them, strict, libraries checked too; a wrong field must fail.
  writeFileSync(join(app, "use.ts"), [
    'import { Banger, BangerError, type VmInfo, type ProgressEvent } from "banger";',
    "export async function run(): Promise<string> {",
    "  const banger = await Banger.connect();",
    "  await using vm = await banger.vms.create({ image: \"tiny\", memoryMib: 256, ports: [\"8080:80\"], onProgress: (e: ProgressEvent) => { console.log(e.step?.name); } });",
    "  const info: VmInfo = vm.info;",
    "  const e = new BangerError(\"not_found\", \"x\");",
    "  return `${info.dns_name} ${info.state} ${e.code}`;",
    "}",
    "",
  ].join("\n"));
  const tsc = join(REPO, "node_modules", "typescript", "bin", "tsc");
  const tscArgs = [process.execPath, tsc, "--noEmit", "--strict", "--skipLibCheck", "false", "--target", "es2022", "--module", "nodenext", "--moduleResolution", "nodenext", "--lib", "es2023,esnext.disposable", "--types", "node", "--typeRoots", join(REPO, "node_modules", "@types"), "use.ts"];
  await systemRunner.run(tscArgs, { cwd: app });
  writeFileSync(join(app, "use.ts"), 'import { Banger } from "banger";\nexport const n: number = (await Banger.connect()).vms.nope;\n');
  await assert.rejects(systemRunner.run(tscArgs, { cwd: app }), (e: unknown) => e instanceof CommandError && /Property 'nope' does not exist on type 'Vms'/.test(e.stdout));
});
