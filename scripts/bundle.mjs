#!/usr/bin/env node
// Bundles each executable into one CommonJS file under dist/bin/. One file loads much faster
// than a tree of ES modules (the CLI's start-up is most of `banger vm list`'s time), and the
// bundle is what package.json's "bin" ships. Native addons stay external.
import { build } from "esbuild";
import { chmodSync } from "node:fs";

for (const name of ["banger", "bangerd", "bangerd-root"]) {
  const outfile = `dist/bin/${name}.cjs`;
  await build({
    entryPoints: [`src/bin/${name}.ts`],
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    minify: true,
    sourcemap: "linked",
    external: ["better-sqlite3", "koffi"],
    logLevel: "warning",
  });
  chmodSync(outfile, 0o755);
}
