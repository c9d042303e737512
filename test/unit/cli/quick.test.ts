import assert from "node:assert/strict";
import { test } from "node:test";
import type { Output } from "../../../src/cli/command.js";
import { COMMANDS } from "../../../src/cli/commands/index.js";
import { runFullCli } from "../../../src/cli/full.js";
import { findCommand, runCli } from "../../../src/cli/main.js";
import { isQuick, QUICK_COMMANDS } from "../../../src/cli/quick.js";

const pathsOf = (c: (typeof COMMANDS)[number]): readonly (readonly string[])[] => [c.path, ...(c.aliases ?? [])];

void test("every quick command is the whole CLI's own, and no command extends a quick one's path", () => {
  for (const q of QUICK_COMMANDS) {
    assert.ok(COMMANDS.includes(q), `${q.path.join(" ")} is in COMMANDS`);
    for (const p of pathsOf(q)) {
      // Whatever follows a quick path, the whole CLI picks the same command for it.
      for (const tail of [[], ["x"], ["--json"], ["x", "y", "z"]]) assert.equal(findCommand([...p, ...tail], COMMANDS)?.command, q, [...p, ...tail].join(" "));
      for (const c of COMMANDS) {
        if (c === q) continue;
        for (const o of pathsOf(c)) assert.ok(!(o.length >= p.length && p.every((w, i) => o[i] === w)), `${o.join(" ")} extends quick ${p.join(" ")}`);
      }
    }
  }
});

void test("isQuick: the quick commands, with or without --context; help, other commands and bad global flags are not", () => {
  for (const argv of [["vm", "list", "--json"], ["vm", "ls", "-q"], ["--context", "lab", "vm", "ls"], ["--context=lab", "vm", "exec", "box", "--", "true"], ["vm", "exec", "box", "--", "grep", "-h", "x"], ["--version"], ["-V"], ["version", "--json"], ["vm", "list", "stray"]]) {
    assert.equal(isQuick(argv), true, argv.join(" "));
  }
  for (const argv of [[], ["vm"], ["vm", "show", "box"], ["vm", "list", "--help"], ["vm", "exec", "-h"], ["help", "vm", "list"], ["--help"], ["--context"], ["--context", "lab"], ["vm", "lst"], ["image", "list"]]) {
    assert.equal(isQuick(argv), false, argv.join(" "));
  }
});

function capture(): Output & { text: string } {
  const o = { text: "", write(s: string) { o.text += s; return true; } };
  return o;
}

async function run(how: "quick" | "full", argv: string[]): Promise<string> {
  const stdout = capture();
  const stderr = capture();
  const io = { stdout, stderr, env: { HOME: "/nonexistent", BANGER_SOCKET: "/nonexistent/bangerd.sock" } };
  const code = how === "quick" ? await runCli(argv, io, QUICK_COMMANDS) : await runFullCli(argv, io);
  // Each invocation mints its own op id.
  return `${code}\n${stdout.text}\n${stderr.text}`.replace(/\bop-[0-9a-f]{12}\b/g, "OPID");
}

void test("a quick command answers as the whole CLI does: output, usage errors, a daemon that is not there", async () => {
  for (const argv of [["--version"], ["version", "--json"], ["vm", "list", "stray"], ["vm", "list", "--jsn"], ["vm", "ls", "--json", "-q"], ["vm", "list"], ["vm", "exec", "box"], ["vm", "exec", "box", "--", "true"], ["vm", "exec", "-w", "rel", "box", "--", "true"]]) {
    assert.ok(isQuick(argv), argv.join(" "));
    assert.equal(await run("quick", argv), await run("full", argv), argv.join(" "));
  }
});
