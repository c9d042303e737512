import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { dropbearPrivateKey, ed25519PublicBlob, ed25519PublicLine, opensshPrivateKey, sshString } from "../../../src/model/ssh-key-format.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { needsCommands, requires } from "../../helpers/requirements.js";

/**
 * A throwaway key made on a dev machine with
 * `ssh-keygen -t ed25519 -N "" -C fixture@banger -f k` and
 * `dropbearconvert openssh dropbear k k.db` (OpenSSH 9.2, dropbear 2022.83).
 * Seed, public key and check integer were read back out of that file, so
 * re-encoding them must reproduce the tools' bytes exactly.
 */
const fixture = {
  seed: Buffer.from("2dd1eb6874bf25ffc444c075cdacc5e908b3cd07d1bfa8c043cf533df9901991", "hex"),
  publicKey: Buffer.from("25105ff17138ef8a9daac24aeb65b604b5a1fa257a87f6b687e86e96c814c76d", "hex"),
  checkInt: 0x9631256e,
  comment: "fixture@banger",
  openssh: [
    "-----BEGIN OPENSSH PRIVATE KEY-----",
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW",
    "QyNTUxOQAAACAlEF/xcTjvip2qwkrrZbYEtaH6JXqH9raH6G6WyBTHbQAAAJiWMSVuljEl",
    "bgAAAAtzc2gtZWQyNTUxOQAAACAlEF/xcTjvip2qwkrrZbYEtaH6JXqH9raH6G6WyBTHbQ",
    "AAAEAt0etodL8l/8REwHXNrMXpCLPNB9G/qMBDz1M9+ZAZkSUQX/FxOO+KnarCSutltgS1",
    "ofoleof2tofobpbIFMdtAAAADmZpeHR1cmVAYmFuZ2VyAQIDBAUGBw==",
    "-----END OPENSSH PRIVATE KEY-----",
    "",
  ].join("\n"),
  publicLine: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICUQX/FxOO+KnarCSutltgS1ofoleof2tofobpbIFMdt fixture@banger",
  dropbear: "AAAAC3NzaC1lZDI1NTE5AAAAQC3R62h0vyX/xETAdc2sxekIs80H0b+owEPPUz35kBmRJRBf8XE474qdqsJK62W2BLWh+iV6h/a2h+hulsgUx20=",
};
const key = { seed: fixture.seed, publicKey: fixture.publicKey };

void test("the OpenSSH private key is byte-identical to ssh-keygen's (magic, none/none, checkints, 1,2,3 padding, 70-column PEM)", () => {
  assert.equal(opensshPrivateKey(key, fixture.comment, fixture.checkInt), fixture.openssh);
});

void test("the public line and blob are what ssh-keygen writes to .pub", () => {
  assert.equal(ed25519PublicLine(fixture.publicKey, fixture.comment), fixture.publicLine);
  assert.equal(ed25519PublicLine(fixture.publicKey), fixture.publicLine.replace(/ fixture@banger$/, ""));
  assert.equal(ed25519PublicBlob(fixture.publicKey).toString("base64"), fixture.publicLine.split(" ")[1]);
  assert.deepEqual(sshString("ab"), Buffer.from([0, 0, 0, 2, 0x61, 0x62]));
});

void test("the dropbear private key is byte-identical to dropbearconvert's", () => {
  assert.equal(dropbearPrivateKey(key).toString("base64"), fixture.dropbear);
});

void test("encoders refuse wrong-sized keys, multi-line comments and non-uint32 check integers", () => {
  const short = { seed: fixture.seed.subarray(0, 31), publicKey: fixture.publicKey };
  assert.throws(() => opensshPrivateKey(short, "", 1), /32-byte seed/);
  assert.throws(() => dropbearPrivateKey({ seed: fixture.seed, publicKey: Buffer.alloc(33) }), /32-byte seed and public key, got 32 and 33/);
  assert.throws(() => ed25519PublicLine(Buffer.alloc(0)), /32 bytes/);
  assert.throws(() => ed25519PublicLine(fixture.publicKey, "x\nssh-ed25519 AAAA evil"), /one line/);
  assert.throws(() => opensshPrivateKey(key, "a\rb", 1), /one line/);
  for (const bad of [-1, 2 ** 32, 1.5, Number.NaN]) assert.throws(() => opensshPrivateKey(key, "", bad), /uint32/);
});

/**
 * Every padding length (0..7 bytes) through the real loader: OpenSSH checks
 * the 1,2,3... padding and the block alignment, so an off-by-one here would
 * be refused for some comment lengths only.
 */
void test("ssh-keygen loads our key for every padding length and derives our public key", { skip: requires(needsCommands("ssh-keygen")) }, async (t) => {
  const dir = mkdtempSync("/tmp/s3-fmt-");
  t.after(() => { rmSync(dir, { recursive: true, force: true }); });
  for (let len = 0; len < 8; len++) {
    const comment = "c".repeat(len);
    const path = join(dir, `k${len}`);
    writeFileSync(path, opensshPrivateKey(key, comment, 0xdeadbeef), { mode: 0o600 });
    const printed = await runText(systemRunner, ["ssh-keygen", "-y", "-f", path]);
    assert.equal(printed, ed25519PublicLine(fixture.publicKey, comment), `comment length ${len}`);
  }
});
