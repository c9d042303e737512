#!/usr/bin/env node
// node scripts/detach.mjs LOG -- CMD ARGS...
// Starts CMD in its own session with stdout and stderr appended to LOG, then exits. quickstart runs
// it as the owner, so the owner's log is opened with the owner's rights, never root's.
import { spawn } from "node:child_process";
import { openSync } from "node:fs";

const [log, dashdash, ...argv] = process.argv.slice(2);
if (log === undefined || dashdash !== "--" || argv.length === 0) {
  console.error("usage: detach.mjs LOG -- CMD [ARGS...]");
  process.exit(2);
}
const fd = openSync(log, "a", 0o600);
spawn(argv[0], argv.slice(1), { detached: true, stdio: ["ignore", fd, fd] }).unref();
