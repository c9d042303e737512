import assert from "node:assert/strict";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { unixHelperClient } from "../../../src/daemon/helper-client.js";
import { writeExt4Files } from "../../../src/daemon/storage/ext4.js";
import { HELPER_VM_LEAVES, helperVmFiles } from "../../../src/paths/paths.js";
import { privVmmSendIdentity, type VmIdentity } from "../../../src/rpc/priv/agent.js";
import { newOpId } from "../../../src/rpc/opid.js";
import { createLogger } from "../../../src/system/log.js";
import { runText, systemRunner } from "../../../src/system/runner.js";
import { firecrackerDriver } from "../../../src/vmm/firecracker/driver.js";
import { qemuDriver } from "../../../src/vmm/qemu/driver.js";
import { needsCommands, needsRoot, requires } from "../../helpers/requirements.js";
import { tinyImageSkip } from "../../helpers/tiny-image.js";
import { destroyWorld, DOUBLE, GUEST_IP, makeVm, makeWorld, processesUnder, waitForConsole, type World } from "../../helpers/vmm-world.js";

const skip = requires(needsRoot(), needsCommands("qemu-system-x86_64", "ip", "busybox", "setpriv", "mkfs.ext4", "debugfs", "ssh", "ssh-keygen", "dropbearkey"), tinyImageSkip());
const logger = createLogger({ write: () => true });

const NEW_IP = "172.31.77.9";
const NEW_MAC = "06:00:ac:1f:4d:09";

/** ssh into the guest at `ip` as root with the test's key, trusting only `knownHosts`. */
function guestSsh(w: World, ip: string, knownHosts: string, command: string): Promise<string> {
  return w.ns.run(["ssh", "-i", join(w.base, "client"), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", `root@${ip}`, command]);
}

/** Guest wall clock minus host wall clock, in ms, with the uncertainty of the round trip. */
async function clockOffset(w: World, knownHosts: string): Promise<{ offsetMs: number; plusMinusMs: number }> {
  const before = Date.now();
  const out = await guestSsh(w, NEW_IP, knownHosts, "adjtimex");
  const after = Date.now();
  const sec = Number(/time\.tv_sec:\s+([0-9]+)/.exec(out)?.[1]);
  const usec = Number(/time\.tv_usec:\s+([0-9]+)/.exec(out)?.[1]);
  assert.ok(Number.isFinite(sec) && Number.isFinite(usec), `adjtimex printed no time: ${out}`);
  return { offsetMs: sec * 1000 + usec / 1000 - (before + after) / 2, plusMinusMs: (after - before) / 2 };
}

async function scenario(t: { diagnostic(msg: string): void }, kind: "qemu" | "firecracker"): Promise<void> {
  const w = await makeWorld(kind === "qemu" ? "ag" : "agf");
  try {
    const helper = unixHelperClient(w.helperSocket);
    const driver = kind === "qemu" ? qemuDriver({ helper, logger, qemuBin: "qemu-system-x86_64", runAs: { uid: w.user.uid, gid: w.user.gid } }) : firecrackerDriver({ helper, logger, firecrackerBin: DOUBLE });
    const vmId = (kind === "qemu" ? "a9" : "f9").repeat(16);
    const base = await makeVm(w, vmId, kind);
    // Firecracker's agent channel is its vsock device (the double maps it onto the same virtio-serial port).
    const spec = kind === "qemu" ? base : { ...base, vsock: { cid: 3, udsPath: helperVmFiles.vsockSocket(w.base, vmId) } };
    await systemRunner.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", join(w.base, "client")]);
    const clientPub = readFileSync(join(w.base, "client.pub"), "utf8").trim();
    // makeVm's guest mounts no work disk on /root: the key goes into the root disk's own /root.
    await writeExt4Files(systemRunner, spec.rootDisk, [{ path: "/root/.ssh/authorized_keys", data: `${clientPub}\n`, mode: 0o600 }], [{ path: "/root/.ssh", mode: 0o700, uid: 0, gid: 0 }]);
    // The fork's host key, in the tiny flavor's (dropbear) format, and the known_hosts line that trusts only it.
    await systemRunner.run(["dropbearkey", "-t", "ed25519", "-f", join(w.base, "hostkey")]);
    const hostPub = (await runText(systemRunner, ["dropbearkey", "-y", "-f", join(w.base, "hostkey")])).split("\n").find((l) => l.startsWith("ssh-ed25519 ")) ?? "";
    const knownHosts = join(w.base, "known_hosts");
    writeFileSync(knownHosts, `${NEW_IP} ${hostPub.split(" ").slice(0, 2).join(" ")}\n`);

    const handle = await driver.launch(spec, newOpId());
    // The FIFOs are the helper's: root's, in its root-owned run dir, reachable by nobody else.
    for (const leaf of kind === "qemu" ? [HELPER_VM_LEAVES.agentIn, HELPER_VM_LEAVES.agentOut] : []) {
      const st = statSync(join(helperVmFiles.vmDir(w.base, vmId), leaf));
      assert.ok(st.isFIFO() && st.uid === 0 && (st.mode & 0o077) === 0, `${leaf} is a root-only FIFO`);
    }
    await waitForConsole(spec, "banger-agent: listening on /dev/vport", 0, 120_000);
    await waitForConsole(spec, "banger: tiny guest ready", 0, 120_000);
    await w.ns.run(["busybox", "ping", "-c", "1", "-W", "5", GUEST_IP]);

    // A bad field is refused by the helper before anything reaches the guest.
    const identity: VmIdentity = { hostname: "fork-one", mac: NEW_MAC, ip: NEW_IP, prefix: 24, gateway: "172.31.77.1", nameservers: ["172.31.77.1", "9.9.9.9"], host_key_b64: readFileSync(join(w.base, "hostkey")).toString("base64") };
    await assert.rejects(helper.call(privVmmSendIdentity, { ...identity, hostname: "bad name;reboot", pid: handle.pid, vm_id: vmId, kind }, newOpId()), /hostname: .* is not allowed/);
    if (kind === "qemu") {
      // Garbage on the port is ignored by the agent (a console message), never acted on.
      writeFileSync(join(helperVmFiles.vmDir(w.base, vmId), HELPER_VM_LEAVES.agentIn), "reboot\nbanger-identity v=1 seq=7 hostname=$(reboot)\n");
      await waitForConsole(spec, "banger-agent: ignored a line that is not a banger-identity request", 0, 30_000);
      await waitForConsole(spec, "banger-agent: refused request 7: field hostname is malformed", 0, 30_000);
    }

    const acks: number[] = [];
    const t0 = Date.now();
    acks.push((await driver.sendIdentity(handle, identity, newOpId())).ackMs);
    const firstCallMs = Date.now() - t0;
    // Again with the same identity: idempotent, and a second latency sample.
    acks.push((await driver.sendIdentity(handle, identity, newOpId())).ackMs);
    await waitForConsole(spec, "banger-agent: identity", 0, 1000);

    // The new address answers, with the new MAC; the old one is gone.
    await w.ns.run(["busybox", "ping", "-c", "1", "-W", "5", NEW_IP]);
    const neigh = await w.ns.run(["ip", "neigh", "show", NEW_IP]);
    assert.match(neigh, new RegExp(`lladdr ${NEW_MAC}`), neigh);
    await assert.rejects(w.ns.run(["busybox", "ping", "-c", "1", "-W", "2", GUEST_IP]), "the old address no longer answers");
    // ssh with only the NEW host key trusted: the agent installed it and restarted dropbear.
    const inGuest = await guestSsh(w, NEW_IP, knownHosts, "hostname; cat /etc/hostname; cat /etc/banger/network; cat /etc/resolv.conf; ip -o link show eth0");
    assert.match(inGuest, /^fork-one\nfork-one\n/);
    assert.match(inGuest, new RegExp(`MAC=${NEW_MAC}\nIP=${NEW_IP}\nPREFIX=24\nGATEWAY=172.31.77.1\nDNS=172.31.77.1 9.9.9.9\n`));
    assert.match(inGuest, /nameserver 172\.31\.77\.1\nnameserver 9\.9\.9\.9\n/);
    assert.match(inGuest, new RegExp(`link/ether ${NEW_MAC}`));

    // The clock: set far wrong in the guest, then a send puts it within 1 s of the host's.
    await guestSsh(w, NEW_IP, knownHosts, "date -s @1000000000 >/dev/null");
    assert.ok(Math.abs((await clockOffset(w, knownHosts)).offsetMs) > 1e9, "guest clock was set wrong");
    acks.push((await driver.sendIdentity(handle, identity, newOpId())).ackMs);
    const clock = await clockOffset(w, knownHosts);
    assert.ok(Math.abs(clock.offsetMs) < 1000, `guest clock ${clock.offsetMs.toFixed(0)} ms off the host's`);
    t.diagnostic(`${kind}: ack ms: ${acks.join(", ")} (first call end to end ${firstCallMs} ms); guest clock offset ${clock.offsetMs.toFixed(0)} ± ${clock.plusMinusMs.toFixed(0)} ms`);

    // A VMM that is not this VM's (wrong pid) is refused before any file is opened.
    await assert.rejects(helper.call(privVmmSendIdentity, { ...identity, pid: process.pid, vm_id: vmId, kind }, newOpId()));

    await driver.stop(handle, { timeoutMs: 30_000 }, newOpId());
    for (let i = 0; i < 50 && processesUnder(w.base).length > 0; i++) await sleep(100);
    assert.deepEqual(processesUnder(w.base), []);
  } finally {
    await destroyWorld(w);
  }
}

void test("qemu: the guest agent takes a new identity (IP, MAC, hostname, clock, host key) and acks it", { skip, timeout: 300_000 }, async (t) => {
  await scenario(t, "qemu");
});

void test("firecracker (API double): the same identity over vsock port 52 (hybrid vsock CONNECT), acked", { skip, timeout: 300_000 }, async (t) => {
  await scenario(t, "firecracker");
});
