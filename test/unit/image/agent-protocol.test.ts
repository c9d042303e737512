import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { agentScript } from "../../../src/image/agent-script.js";
import { AGENT_FIELD_PATTERNS, composeIdentityLine, LineSplitter, parseAck } from "../../../src/vmm/agent-line.js";

const IDENTITY = { hostname: "fork-1", mac: "06:00:ac:1f:4d:09", ip: "172.31.77.9", prefix: 24, gateway: "172.31.77.1", nameservers: ["172.31.77.1", "9.9.9.9"], host_key_b64: Buffer.from("key bytes").toString("base64") };
const EXTRAS = { seq: 42, timeNs: 1_700_000_000_012_345_678n, seedHex: "ab".repeat(32) };

void test("identity line: every field in order, time with 9 digits of nanoseconds, one newline", () => {
  assert.equal(
    composeIdentityLine(IDENTITY, EXTRAS),
    `banger-identity v=1 seq=42 hostname=fork-1 mac=06:00:ac:1f:4d:09 ip=172.31.77.9 prefix=24 gateway=172.31.77.1 dns=172.31.77.1,9.9.9.9 time=1700000000.012345678 seed=${"ab".repeat(32)} hostkey=${IDENTITY.host_key_b64}\n`,
  );
  assert.match(composeIdentityLine(IDENTITY, { ...EXTRAS, timeNs: 5n }), / time=0\.000000005 /);
});

void test("identity line: a value outside its pattern is refused, naming the field", () => {
  const bad: [Partial<typeof IDENTITY>, RegExp][] = [
    [{ hostname: "a b" }, /hostname:/],
    [{ hostname: "$(reboot)" }, /hostname:/],
    [{ hostname: "-x" }, /hostname:/],
    [{ mac: "06:00:AC:1F:4D:09" }, /mac:/],
    [{ ip: "172.31.77.256" }, /ip:/],
    [{ ip: "172.31.77.9\nbanger-identity" }, /ip:/],
    [{ prefix: 31 }, /prefix:/],
    [{ gateway: "gw" }, /gateway:/],
    [{ nameservers: ["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"] }, /dns:/],
    [{ nameservers: [] }, /nameservers:/],
    [{ host_key_b64: "not base64!" }, /hostkey:/],
  ];
  for (const [change, re] of bad) assert.throws(() => composeIdentityLine({ ...IDENTITY, ...change }, EXTRAS), re, JSON.stringify(change));
  assert.throws(() => composeIdentityLine(IDENTITY, { ...EXTRAS, seedHex: "zz" }), /seed:/);
});

void test("acks: ok and error parsed, anything else is not an ack", () => {
  assert.deepEqual(parseAck("banger-ack seq=42 ok"), { seq: 42, ok: true });
  assert.deepEqual(parseAck("banger-ack seq=7 error=bad-hostname\r"), { seq: 7, ok: false, error: "bad-hostname" });
  for (const line of ["", "banger-ack seq=x ok", "banger-ack seq=1 okay", "banger-agent: listening", "banger-ack seq=1 error=Bad Word"]) assert.equal(parseAck(line), undefined, line);
});

void test("line splitter: lines across chunks, and a bounded tail", () => {
  const s = new LineSplitter(8);
  assert.deepEqual(s.push(Buffer.from("ab")), []);
  assert.deepEqual(s.push(Buffer.from("c\nde\nf")), ["abc", "de"]);
  assert.deepEqual(s.push(Buffer.from("x".repeat(100))), []);
  assert.deepEqual(s.push(Buffer.from("\n")), ["xxxxxxxx"]);
});

/**
 * The agent's own parsing, run by the shells the images have (busybox ash, dash as /bin/sh): the
 * script up to its main loop, with `apply` replaced (it would change this host), fd 3 a file.
 */
function runHandle(shell: readonly string[], lines: readonly string[]): { acks: string; stderr: string; dir: string } {
  const script = agentScript("tiny");
  const functions = script.slice(0, script.indexOf("\nwhile :; do"));
  const dir = mkdtempSync(join(tmpdir(), "bgt-agent-"));
  const driver = `${functions}\napply() { result=ok; echo "applied $hostname" >&2; }\nexec 3>"${dir}/acks"\n${lines.map((l) => `handle '${l.replaceAll("'", "'\\''")}'`).join("\n")}\n`;
  const r = spawnSync(shell[0] ?? "sh", [...shell.slice(1), "-c", driver], { cwd: dir, encoding: "utf8", timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  return { acks: readFileSync(join(dir, "acks"), "utf8"), stderr: r.stderr, dir };
}

for (const shell of [["busybox", "sh"], ["sh"]] as const) {
  void test(`agent (${shell.join(" ")}): applies a good request, refuses bad values, ignores garbage, executes nothing`, () => {
    const good = composeIdentityLine(IDENTITY, EXTRAS).trimEnd();
    const { acks, stderr, dir } = runHandle(shell, [
      "reboot",
      "banger-identity v=1 seq=5 evil=1",
      good.replace("hostname=fork-1", "hostname=$(touch${IFS}pwned)"),
      good.replace("seq=42", "seq=43").replace("hostname=fork-1", "hostname=*"),
      good.replace("seq=42", "seq=44").replace("mac=06:00:ac:1f:4d:09", "mac=06:00:ac:1f:4d:09;touch${IFS}pwned2"),
      "banger-identity seq=$(touch${IFS}pwned3)",
      good,
    ]);
    try {
      assert.equal(acks, "banger-ack seq=42 error=bad-hostname\nbanger-ack seq=43 error=bad-hostname\nbanger-ack seq=44 error=bad-mac\nbanger-ack seq=42 ok\n");
      assert.match(stderr, /ignored a line that is not a banger-identity request/);
      assert.match(stderr, /ignored a request with an unknown field/);
      assert.match(stderr, /ignored a request without a valid seq/);
      assert.match(stderr, /applied fork-1\n/);
      for (const f of ["pwned", "pwned2", "pwned3"]) assert.equal(existsSync(join(dir, f)), false, `${f} was created: a value was executed`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

void test("agent patterns: the guest's grep -Ex agrees with the helper's regexes", () => {
  const samples: Record<keyof typeof AGENT_FIELD_PATTERNS, string[]> = {
    v: ["1", "2", "11"],
    seq: ["0", "4294967295", "12345678901", "-1"],
    hostname: ["a", "fork-1", "-a", "a-", "A", "a".repeat(63), "a".repeat(64)],
    mac: ["06:00:ac:1f:4d:09", "06:00:AC:1f:4d:09", "06:00:ac:1f:4d"],
    ip: ["0.0.0.0", "255.255.255.255", "256.1.1.1", "01.2.3.4", "1.2.3"],
    prefix: ["8", "24", "30", "7", "31", "024"],
    gateway: ["172.31.77.1", "x"],
    dns: ["1.1.1.1", "1.1.1.1,2.2.2.2,3.3.3.3", "1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4", "1.1.1.1,"],
    time: ["1700000000.000000001", "1.5", "1700000000.0000000001"],
    seed: ["0".repeat(64), "0".repeat(63), "G".repeat(64)],
    hostkey: ["AAAA", "AAA=", "AA==", "A===", "a b", "AAAA\\"],
  };
  for (const [field, pattern] of Object.entries(AGENT_FIELD_PATTERNS)) {
    for (const value of samples[field as keyof typeof samples]) {
      const js = new RegExp(`^(${pattern})$`).test(value);
      const sh = spawnSync("busybox", ["grep", "-Eqx", pattern], { input: `${value}\n` }).status === 0;
      assert.equal(sh, js, `${field}=${value}: guest says ${sh}, helper says ${js}`);
    }
  }
});
