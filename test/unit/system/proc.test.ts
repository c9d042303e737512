import assert from "node:assert/strict";
import { test } from "node:test";
import { computeStats, parseMemTotal, parseProcStat, parseProcStatm, parseProcUptime, readProcessStats } from "../../../src/system/proc.js";

const STAT = "4242 (qemu (x86) sys) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 150 0 0 20 0 3 0 50000 1000000 2000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";

test("parseProcStat handles a comm with spaces and parentheses", () => {
  const st = parseProcStat(STAT);
  assert.equal(st.comm, "qemu (x86) sys");
  assert.equal(st.state, "S");
  assert.equal(st.ppid, 1);
  assert.equal(st.utimeTicks, 250);
  assert.equal(st.stimeTicks, 150);
  assert.equal(st.startTimeTicks, 50000);
});

test("parseProcStat rejects truncated or garbage input", () => {
  assert.throws(() => parseProcStat("4242 (x) S 1 2"), /field count/);
  assert.throws(() => parseProcStat("garbage"), /format/);
  assert.throws(() => parseProcStat(STAT.replace(" 250 ", " abc ")), /utime/);
});

test("parseProcStatm and parseProcUptime", () => {
  assert.deepEqual(parseProcStatm("1000 250 30 1 0 200 0\n"), { sizePages: 1000, residentPages: 250 });
  assert.throws(() => parseProcStatm("x y"), /statm/);
  assert.equal(parseProcUptime("12345.67 54321.00\n"), 12345.67);
  assert.throws(() => parseProcUptime(""), /uptime/);
});

test("parseMemTotal converts units and reports malformed input", () => {
  assert.equal(parseMemTotal("MemFree: 1 kB\nMemTotal:       16384 kB\n"), 16384 * 1024);
  assert.equal(parseMemTotal("MemTotal: 2 GB"), 2 * 1024 ** 3);
  assert.throws(() => parseMemTotal("MemFree: 1 kB"), /not found/);
  assert.throws(() => parseMemTotal("MemTotal: 5 TB"), /unit/);
  assert.throws(() => parseMemTotal("MemTotal: x kB"), /malformed/);
});

test("computeStats: CPU time over lifetime, pages to bytes", () => {
  // started at 500 s, now 600 s: 100 s alive, 4 s of CPU => 4 %.
  const s = computeStats(parseProcStat(STAT), { sizePages: 10, residentPages: 5 }, 600);
  assert.ok(Math.abs(s.cpuPercent - 4) < 1e-9);
  assert.equal(s.rssBytes, 5 * 4096);
  assert.equal(s.vszBytes, 10 * 4096);
  assert.equal(s.uptimeSeconds, 100);
});

test("readProcessStats reads this very process", async () => {
  const s = await readProcessStats(process.pid);
  assert.ok(s.rssBytes > 1024 * 1024, "a node process has more than 1 MiB resident");
  assert.ok(s.cpuPercent >= 0);
});
