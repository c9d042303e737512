import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { systemRunner } from "../../src/system/runner.js";
import { VERSION } from "../../src/version.js";

/** The bundles that carry VERSION (banger-doctor reports none). */
const VERSIONED_BUNDLES = ["banger-main.cjs", "banger-cli.cjs", "bangerd.cjs", "bangerd-root.cjs", "banger-system.cjs"];

/** Prepended to bangerd.cjs (after its shebang) by `brokenDaemon`: --check passes, a real start does not. */
export const BROKEN_DAEMON_LINE = `if(!process.argv.includes("--check")){process.stderr.write("bangerd: broken on purpose by the test's package\\n");process.exit(1)}`;

/**
 * A copy of the packed tarball `src` that calls itself `version`: package.json and the VERSION
 * literal in each bundle (exactly one each, or this throws: a bundle layout change must not make a
 * "bumped" package that still reports the old version). `brokenDaemon` makes a package whose daemon
 * passes `--check` but exits at once when started, the case update must roll back from.
 */
export async function repackAs(src: string, dest: string, version: string, o: { brokenDaemon?: boolean } = {}): Promise<void> {
  const dir = await mkdtemp(join(dest, "..", ".repack-"));
  try {
    await systemRunner.run(["tar", "-xzf", src, "-C", dir]);
    const pkgFile = join(dir, "package", "package.json");
    const pkg = JSON.parse(await readFile(pkgFile, "utf8")) as { version: string };
    pkg.version = version;
    await writeFile(pkgFile, JSON.stringify(pkg, null, 2) + "\n");
    const bin = join(dir, "package", "dist", "bin");
    const present = await readdir(bin);
    for (const name of VERSIONED_BUNDLES) {
      if (!present.includes(name)) throw new Error(`${src} has no dist/bin/${name}`);
      const file = join(bin, name);
      const text = await readFile(file, "utf8");
      const parts = text.split(JSON.stringify(VERSION));
      if (parts.length !== 2) throw new Error(`dist/bin/${name} has ${parts.length - 1} copies of ${JSON.stringify(VERSION)}, expected exactly one`);
      let out = parts.join(JSON.stringify(version));
      if (o.brokenDaemon === true && name === "bangerd.cjs") {
        const nl = out.indexOf("\n");
        out = `${out.slice(0, nl + 1)}${BROKEN_DAEMON_LINE}\n${out.slice(nl + 1)}`;
      }
      await writeFile(file, out);
    }
    await systemRunner.run(["tar", "-czf", dest, "-C", dir, "package"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
