import assert from "node:assert/strict";
import { test } from "node:test";
import { ifreq, ifreqWithFlags, ifreqWithIndex, netmaskPrefix, readFlags, readIndex, readIpv4 } from "../../../src/roothelper/ifreq.js";

void test("an ifreq is 40 bytes: the NUL-terminated name in the first 16, the union zeroed", () => {
  const buf = ifreq("tap-fc-0123abcd");
  assert.equal(buf.length, 40);
  assert.equal(buf.subarray(0, 16).toString("latin1"), "tap-fc-0123abcd\0");
  assert.ok(buf.subarray(16).every((b) => b === 0));
});

void test("names that do not fit ifr_name, or are not plain ASCII, are refused rather than truncated", () => {
  for (const bad of ["", "tap-fc-0123abcde", "a".repeat(300), "tap fc", "tap\n", "täp", "tap\u0000x"]) {
    assert.throws(() => ifreq(bad), /does not fit in ifr_name/, JSON.stringify(bad));
  }
});

void test("ifr_flags is a little-endian short at offset 16; TUN_EXCL's sign bit survives", () => {
  const buf = ifreqWithFlags("tap-pool-0", 0x0002 | 0x1000 | 0x8000);
  assert.deepEqual([...buf.subarray(16, 20)], [0x02, 0x90, 0, 0]);
  assert.equal(readFlags(buf), 0x9002);
  // Flags above the short (IFF_LOWER_UP and friends) are not part of ifr_flags.
  assert.equal(readFlags(ifreqWithFlags("x", 0x10043)), 0x43);
});

void test("ifr_ifindex is a little-endian int at offset 16", () => {
  const buf = ifreqWithIndex("banger0", 0x01020304);
  assert.deepEqual([...buf.subarray(16, 20)], [4, 3, 2, 1]);
  assert.equal(readIndex(buf), 0x01020304);
});

void test("ifr_addr is a sockaddr_in: family (LE), port (BE), then the address in network order", () => {
  const buf = ifreq("banger0");
  buf.set([2, 0, 0, 0, 172, 16, 90, 1], 16);
  assert.equal(readIpv4(buf), "172.16.90.1");
  const v6 = ifreq("banger0");
  v6.writeUInt16LE(10, 16);
  assert.throws(() => readIpv4(v6), /address family 10, not AF_INET/);
});

void test("netmask prefixes: contiguous masks only", () => {
  assert.equal(netmaskPrefix("255.255.255.0"), 24);
  assert.equal(netmaskPrefix("255.255.240.0"), 20);
  assert.equal(netmaskPrefix("255.255.255.255"), 32);
  assert.equal(netmaskPrefix("0.0.0.0"), 0);
  assert.equal(netmaskPrefix("255.0.255.0"), undefined);
});
