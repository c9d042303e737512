import assert from "node:assert/strict";
import { chmodSync, chownSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { copyVersion } from "../../../src/install/copy-code.js";
import { installLayout } from "../../../src/install/layout.js";
import { needsRoot } from "../../helpers/requirements.js";

const OWNER = 4242;
const base = mkdtempSync("/tmp/bgt-copy-code-");
chmodSync(base, 0o755);
after(() => { rmSync(base, { recursive: true, force: true }); });

/** A package as an owner's checkout holds it: every file the owner's. */
function ownersPackage(dir: string): string {
  mkdirSync(join(dir, "dist", "bin"), { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "banger", version: "0.1.0", dependencies: {} }));
  writeFileSync(join(dir, "dist", "bin", "banger.cjs"), "code\n", { mode: 0o644 });
  for (const p of [dir, join(dir, "package.json"), join(dir, "dist"), join(dir, "dist", "bin"), join(dir, "dist", "bin", "banger.cjs")]) chownSync(p, OWNER, OWNER);
  return dir;
}

void test("the owner's package is copied root's; a file the owner could not read (a hard link to a root-only file) stops the copy, leaving nothing", { skip: needsRoot() }, () => {
  const layout = installLayout(join(base, "root"));
  const pkg = ownersPackage(join(base, "pkg"));
  const target = copyVersion(layout, pkg, "0.1.0");
  const copied = statSync(join(target, "dist", "bin", "banger.cjs"));
  assert.deepEqual([copied.uid, copied.mode & 0o777, readFileSync(join(target, "dist", "bin", "banger.cjs"), "utf8")], [0, 0o644, "code\n"]);

  const secret = join(base, "secret");
  writeFileSync(secret, "root only\n", { mode: 0o600 });
  linkSync(secret, join(pkg, "dist", "bin", "stolen.cjs"));
  assert.throws(() => copyVersion(layout, pkg, "0.2.0"), /cannot copy dist\/bin\/stolen\.cjs: it is uid 0's and not readable by others, so the package's owner \(uid 4242\) could not read it/);
  assert.equal(existsSync(join(layout.libDir, "0.2.0")), false, "no version dir");
  assert.deepEqual(readdirSync(layout.libDir), ["0.1.0"], "no staging dir left");
  assert.deepEqual(readFileSync(secret, "utf8"), "root only\n");
});
