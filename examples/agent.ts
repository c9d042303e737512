// An agent-style run: a fresh VM, the project's files written into it, its test suite run with
// the output streamed as it comes, the results read back, and the VM gone at the end whatever
// happened. Run: node dist/examples/agent.js [IMAGE]   (after `npm run build`; needs bangerd)
import { Banger, ExecFailedError } from "banger";

const image = process.argv[2] ?? "default";
const banger = await Banger.connect();

await using vm = await banger.vms.create({
  image,
  memoryMib: 512,
  onProgress: (e) => { if (e.step !== undefined) process.stderr.write(`  ${e.step.name}...\n`); },
});
process.stderr.write(`${vm.name} is up at ${vm.ip ?? "?"}\n`);

// The "project": a function and its tests, as an agent would have written them.
await vm.files.write("/root/work/add.sh", "add() { echo $(($1 + $2)); }\n");
await vm.files.write("/root/work/test.sh", [
  ". ./add.sh",
  "pass=0; fail=0",
  "for case in '1 2 3' '2 2 4' '10 -3 7'; do",
  "  set -- $case",
  '  if [ "$(add $1 $2)" = "$3" ]; then pass=$((pass+1)); echo "ok   add $1 $2"; else fail=$((fail+1)); echo "FAIL add $1 $2"; fi',
  "  sleep 1",
  "done",
  'echo "{\\"pass\\": $pass, \\"fail\\": $fail}" > results.json',
  '[ "$fail" = 0 ]',
  "",
].join("\n"), { mode: 0o755 });

// Streamed: each line shows while the suite still runs; Ctrl-C stops it in the VM too.
const stop = new AbortController();
process.once("SIGINT", () => { stop.abort(); });
const run = await vm.exec(["sh", "test.sh"], {
  cwd: "/root/work",
  signal: stop.signal,
  timeoutMs: 120_000,
  onStdout: (chunk) => process.stdout.write(chunk),
  onStderr: (chunk) => process.stderr.write(chunk),
});
const { code, signal } = await run.exit;
process.stderr.write(`suite ${signal !== null ? `killed by SIG${signal}` : `exited ${String(code)}`}\n`);

const results = JSON.parse(await vm.files.readText("/root/work/results.json")) as { pass: number; fail: number };
process.stdout.write(`passed ${results.pass}, failed ${results.fail}\n`);

try {
  process.stdout.write(await vm.execText(["uname", "-a"]));
} catch (e) {
  if (e instanceof ExecFailedError) process.stderr.write(`uname failed: ${e.message}\n`);
  else throw e;
}
process.exitCode = results.fail === 0 ? 0 : 1;
// Leaving the module's scope disposes `vm`: it is deleted, disks and all.
