import assert from "node:assert/strict";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { launchDetached } from "../../../src/system/launch.js";
import { parseProcStat } from "../../../src/system/proc.js";

const dir = mkdtempSync("/tmp/bgt-vmm-launch-");
const pids: number[] = [];
after(() => {
  for (const p of pids) {
    try { process.kill(p, "SIGKILL"); } catch { /* gone */ }
  }
  rmSync(dir, { recursive: true, force: true });
});

void test("launchDetached: own session, stdio appended to the log, pidfile written", async () => {
  const log = join(dir, "a.log");
  writeFileSync(log, "previous run\n");
  const logFd = openSync(log, "a");
  const pidFd = openSync(join(dir, "a.pid"), "wx");
  const pid = launchDetached({ argv: ["sh", "-c", "echo out; echo err >&2; exec sleep 30"], logFd, pidFd });
  closeSync(logFd);
  closeSync(pidFd);
  pids.push(pid);
  assert.equal(readFileSync(join(dir, "a.pid"), "utf8"), `${pid}\n`);
  const raw = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = raw.slice(raw.lastIndexOf(")") + 2).split(" ");
  assert.equal(Number(fields[3]), pid, "session id == pid: setsid, no controlling terminal shared with us");
  assert.ok(parseProcStat(raw));
  for (let i = 0; i < 50 && !readFileSync(log, "utf8").includes("err"); i++) await sleep(20);
  assert.equal(readFileSync(log, "utf8"), "previous run\nout\nerr\n");
});

void test("launchDetached: a missing binary or an empty argv throws; an unwritable pidfile kills the child and throws", () => {
  const logFd = openSync(join(dir, "b.log"), "a");
  assert.throws(() => launchDetached({ argv: [join(dir, "nope")], logFd }), /cannot start/);
  assert.throws(() => launchDetached({ argv: [], logFd }), /empty argv/);
  const readOnly = openSync(join(dir, "b.log"), "r");
  assert.throws(() => launchDetached({ argv: ["sleep", "30"], logFd, pidFd: readOnly }), /killed it/);
  closeSync(readOnly);
  closeSync(logFd);
});
