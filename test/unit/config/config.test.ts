import assert from "node:assert/strict";
import { test } from "node:test";
import { ConfigError, parseConfig } from "../../../src/config/load.js";

test("an empty config is all defaults", () => {
  const c = parseConfig("");
  assert.equal(c.network.bridge, "banger0");
  assert.equal(c.vmm.kind, "auto");
  assert.equal(c.vmm.accel, "auto");
  assert.equal(c.defaults.vcpus, 2);
  assert.equal(c.storage.clone_strategy, "auto");
});

test("values are read from TOML sections", () => {
  const c = parseConfig(`[network]\nbridge = "br-test"\ncidr = "10.77.0.0/24"\n[vmm]\nkind = "qemu"\naccel = "tcg"\n[defaults]\nmemory_mib = 512\n`);
  assert.equal(c.network.bridge, "br-test");
  assert.equal(c.network.cidr, "10.77.0.0/24");
  assert.equal(c.vmm.kind, "qemu");
  assert.equal(c.defaults.memory_mib, 512);
});

function expectKey(text: string, key: RegExp): void {
  assert.throws(() => parseConfig(text, "cfg.toml"), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /^cfg\.toml: /);
    assert.match(e.message, key);
    return true;
  });
}

test("errors name the bad key", () => {
  expectKey(`[vmm]\nkind = "xen"`, /vmm\.kind/);
  expectKey(`[vmm]\naccel = "hvf"`, /vmm\.accel/);
  expectKey(`[network]\ncidr = "banana"`, /network\.cidr/);
  expectKey(`[network]\ncidr = "300.1.1.0/24"`, /network\.cidr/);
  expectKey(`[network]\nbridge = "this-name-is-way-too-long"`, /network\.bridge/);
  expectKey(`[defaults]\nvcpus = 0`, /defaults\.vcpus/);
  expectKey(`[defaults]\nmemory_mib = "lots"`, /defaults\.memory_mib/);
  expectKey(`[defaults]\nmemroy_mib = 512`, /defaults\.memroy_mib: unknown key/);
  expectKey(`colour = "red"`, /colour: unknown key/);
  expectKey(`[[file_sync]]\nhost = ".gitconfig"\nguest = "relative"`, /file_sync\.0\.guest/);
});

test("invalid TOML is reported with the file name", () => {
  assert.throws(() => parseConfig("[network\n", "x.toml"), /x\.toml: not valid TOML/);
});
