#!/usr/bin/env node
import { join } from "node:path";
import { loadBundle } from "./code-cache.js";

/**
 * `banger`: runs the CLI's body (dist/bin/banger-main.cjs) from its V8 code cache. Start-up is most
 * of what a quick command like `vm list` costs, and most of that was parsing and compiling the body.
 */
loadBundle(join(__dirname, "banger-main.cjs"), join(__dirname, "banger-main.cache")).run();
