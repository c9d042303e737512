#!/usr/bin/env node
// Bundles each executable into one CommonJS file under dist/bin/. One file loads much faster
// than a tree of ES modules (the CLI's start-up is most of `banger vm list`'s time), and the
// bundle is what package.json's "bin" ships. Native addons stay external. ssh2's optional native
// parts (cpu-features, its sshcrypto .node binding) are left out: ssh2 requires them inside
// try/catch and falls back to node:crypto, so the bundle needs no compiler or prebuilt binary.
import { build } from "esbuild";
import { chmodSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";

// The CLI ships in parts that a command loads on use, so `vm list` and `vm exec` do not read and
// deserialize code they never run. banger-main.cjs holds the quick commands (src/cli/quick.ts) and
// loads the whole CLI, banger-cli.cjs, for the rest; that one has a code cache of its own. `banger
// doctor`'s body (zod, the config loader, child_process) and `banger system install|restart|uninstall`'s
// (zod, koffi, the code copy) ship as their own files that only those commands load, and help's config
// defaults (the zod config schema) as banger-help.cjs. The bodies run through vm.Script
// (src/bin/code-cache.ts), where import() has no loader, so these are reached by require().
const APART = [
  [/\/cli\/full\.js$/, "banger-cli.cjs", "banger-cli.cache"],
  [/\/doctor-run\.js$/, "banger-doctor.cjs"],
  [/\/admin-run\.js$/, "banger-system.cjs"],
  [/\/help-defaults\.js$/, "banger-help.cjs"],
];
const CODE_CACHE = resolve(import.meta.dirname, "..", "src", "bin", "code-cache.ts");
const commandsApart = {
  name: "commands-apart",
  setup(b) {
    for (const [filter, file, cache] of APART) b.onResolve({ filter }, (a) => (a.kind === "dynamic-import" ? { path: file, namespace: "apart", pluginData: cache } : undefined));
    b.onLoad({ filter: /.*/, namespace: "apart" }, (a) => ({
      contents: a.pluginData === undefined
        ? `module.exports = require(${JSON.stringify(`./${a.path}`)});`
        : `const { join } = require("node:path");\nconst { loadBundle } = require(${JSON.stringify(CODE_CACHE)});\nmodule.exports = loadBundle(join(__dirname, ${JSON.stringify(a.path)}), join(__dirname, ${JSON.stringify(a.pluginData)})).run();`,
      loader: "js",
      resolveDir: dirname(CODE_CACHE),
    }));
    b.onResolve({ filter: /^\.\/banger-[a-z]+\.cjs$/ }, (a) => (a.kind === "require-call" ? { path: a.path, external: true } : undefined));
  },
};

for (const [name, entry, plugins] of [["banger", "src/bin/banger.ts", []], ["banger-main", "src/bin/banger-main.ts", [commandsApart]], ["banger-cli", "src/cli/full.ts", [commandsApart]], ["banger-doctor", "src/cli/commands/doctor-run.ts", []], ["banger-system", "src/cli/commands/system/admin-run.ts", []], ["banger-help", "src/cli/help-defaults.ts", []], ["bangerd", "src/bin/bangerd.ts", []], ["bangerd-root", "src/bin/bangerd-root.ts", []]]) {
  const outfile = `dist/bin/${name}.cjs`;
  await build({
    entryPoints: [entry],
    plugins,
    outfile,
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    // BUNDLE_NO_MINIFY=1 keeps names readable in profiles (perf, --cpu-prof).
    minify: process.env.BUNDLE_NO_MINIFY === undefined,
    sourcemap: "linked",
    external: ["better-sqlite3", "koffi", "cpu-features", "*.node"],
    logLevel: "warning",
  });
  chmodSync(outfile, 0o755);
}
for (const body of ["dist/bin/banger-main.cjs", "dist/bin/banger-cli.cjs"]) if (/\bimport\(/.test(readFileSync(body, "latin1"))) throw new Error(`${body} calls import(), which vm.Script cannot serve: load it with require()`);

// The SDK (`import { Banger } from "banger"`), as an ES module and as CommonJS for require();
// its declarations come from scripts/sdk-types.mjs.
for (const [format, ext] of [["esm", "mjs"], ["cjs", "cjs"]]) {
  await build({ entryPoints: ["src/sdk/index.ts"], outfile: `dist/sdk/index.${ext}`, bundle: true, platform: "node", format, target: "node20", sourcemap: "linked", logLevel: "warning" });
}

// The Firecracker API double (tests only) is started as a VMM binary: tsc emits it without the
// execute bit, and tests running as a user other than the checkout's owner cannot add it.
chmodSync("dist/test/fc-double/firecracker-double.js", 0o755);
