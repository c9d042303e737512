// A node:test reporter that writes one JSON line per skipped test ({file, name, reason}).
// scripts/test.mjs runs it beside the spec reporter, so every skip can be listed at the end of a
// run and, under CI=true, checked against the allow-list of host facts.
export default async function* skipReporter(source) {
  for await (const event of source) {
    if (event.type !== "test:pass" && event.type !== "test:fail") continue;
    const { skip, name, file } = event.data;
    if (skip === undefined || skip === false) continue;
    yield `${JSON.stringify({ file: file ?? "", name, reason: typeof skip === "string" ? skip : "(no reason given)" })}\n`;
  }
}
