import assert from "node:assert/strict";
import { test } from "node:test";
import type { CliContext } from "../../../src/cli/command.js";
import { vmSshThroughContext } from "../../../src/cli/commands/vm/through-context.js";
import { daemonPath } from "../../../src/cli/daemon-path.js";
import type { RemoteContext } from "../../../src/config/contexts.js";

const LAB: RemoteContext = { name: "lab", url: { user: "me", host: "box", port: 2222 } };

/** What a POSIX shell makes of a command line of single-quoted and plain words (no expansions used here). */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] ?? "";
    if (ch === " ") {
      if (cur !== undefined) words.push(cur);
      cur = undefined;
    } else if (ch === "'") {
      const end = line.indexOf("'", i + 1);
      cur = (cur ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (ch === "\\") {
      cur = (cur ?? "") + (line[i + 1] ?? "");
      i++;
    } else cur = (cur ?? "") + ch;
  }
  if (cur !== undefined) words.push(cur);
  return words;
}

void test("vm ssh through a context: the remote banger's vm ssh, with -- before the destination", () => {
  const sshArgv = vmSshThroughContext({ name: "lab", url: { host: "alias" } }, "web", ["ls", "-l"]);
  assert.deepEqual(sshArgv.slice(0, 4), ["ssh", "-o", "BatchMode=yes", process.stdin.isTTY ? "-t" : "-T"]);
  assert.deepEqual(shellWords(sshArgv.at(-1) ?? ""), ["banger", "vm", "ssh", "web", "--", "ls", "-l"]);
  const withPort = vmSshThroughContext(LAB, "web", []);
  assert.deepEqual(withPort.slice(-3, -1), ["--", "me@box"]);
  assert.deepEqual(shellWords(withPort.at(-1) ?? ""), ["banger", "vm", "ssh", "web"]);
});

void test("file flags the daemon opens: resolved here locally; through a context, absolute paths on that host only", () => {
  const ctx = (remote?: RemoteContext): CliContext => ({
    layout: { mode: "user", stateDir: "/s", runtimeDir: "/r", configFile: "/c", daemonSocket: "/d", helperSocket: "/h" },
    stdout: { write: () => undefined },
    stderr: { write: () => undefined },
    env: {},
    opId: "op-daemonpath1",
    dial: { label: "unused", open: () => { throw new Error("unused"); } },
    call: () => Promise.reject(new Error("unused")),
    ...(remote !== undefined ? { remote } : {}),
  });
  assert.equal(daemonPath(ctx(), "kernel", "vmlinuz"), `${process.cwd()}/vmlinuz`);
  assert.equal(daemonPath(ctx(LAB), "kernel", "/srv/vmlinuz"), "/srv/vmlinuz");
  assert.throws(() => daemonPath(ctx(LAB), "kernel", "vmlinuz"), /through context lab, --kernel names a file on that host: give its absolute path there/);
});
