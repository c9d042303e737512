import { randomBytes, randomInt } from "node:crypto";
import { closeSync, constants, fstatSync, readSync, writeSync } from "node:fs";
import { createConnection, Socket } from "node:net";
import { HELPER_VM_LEAVES } from "../../paths/paths.js";
import { implement, type Registration } from "../../rpc/dispatcher.js";
import { RpcError } from "../../rpc/errors.js";
import { privVmmSendIdentity, type VmIdentity } from "../../rpc/priv/agent.js";
import type { PeerCred } from "../../system/peercred.js";
import { AGENT_VSOCK_PORT, composeIdentityLine, LineSplitter, parseAck, type AgentAck } from "../../vmm/agent-line.js";
import type { HelperEnv } from "../env.js";
import { openBeneath } from "../fs/beneath.js";
import * as v from "../validate.js";
import { openVmmSocket } from "./vmm.js";

const DEFAULT_ACK_TIMEOUT_MS = 15_000;
/** A request line must fit one atomic pipe write (PIPE_BUF). */
const MAX_LINE = 4096;

/** One open channel to a guest agent: send a line, then read what the agent writes back, line by line. */
interface AgentChannel {
  send(line: string): Promise<void>;
  /** Resolves with the agent's ack for `seq`; lines before it (older acks, messages) are skipped. */
  ack(seq: number): Promise<AgentAck>;
  /** After a timeout: take back a request no agent read, so none applies it later. */
  withdraw(): void;
  close(): void;
}

/** A Socket that yields each line it reads to `onLine` (the FIFO and the vsock connection alike). */
function ackReader(sock: Socket, onLine: (line: string) => void): void {
  const split = new LineSplitter();
  sock.on("data", (chunk: Buffer) => {
    for (const line of split.push(chunk)) onLine(line);
  });
}

function ackWaiter(): { onLine: (line: string) => void; ack: (seq: number) => Promise<AgentAck>; fail: (e: Error) => void } {
  const seen: AgentAck[] = [];
  let waiting: { seq: number; resolve: (a: AgentAck) => void; reject: (e: Error) => void } | undefined;
  let failed: Error | undefined;
  return {
    onLine(line) {
      const a = parseAck(line);
      if (a === undefined) return;
      if (waiting !== undefined && a.seq === waiting.seq) waiting.resolve(a);
      else seen.push(a);
    },
    ack(seq) {
      const early = seen.find((a) => a.seq === seq);
      if (early !== undefined) return Promise.resolve(early);
      if (failed !== undefined) return Promise.reject(failed);
      return new Promise((resolve, reject) => {
        waiting = { seq, resolve, reject };
      });
    },
    fail(e) {
      failed = e;
      waiting?.reject(e);
    },
  };
}

/**
 * A FIFO of the VM's run directory, opened by descriptor beneath the run dirs' root (no symlink,
 * no other mount) without blocking, and refused unless it is root's FIFO: only the helper makes
 * entries there.
 */
function openFifo(env: HelperEnv, vmId: string, leaf: string, flags: number): number {
  const n = env.vmmRunDirs.named("agent_fifo", vmId, leaf);
  const fd = openBeneath(n, n.root.fd, n.rel, flags | constants.O_NONBLOCK | constants.O_NOFOLLOW);
  const st = fstatSync(fd);
  if (!st.isFIFO() || st.uid !== 0) {
    closeSync(fd);
    throw new RpcError("bad_params", `${n.root.path}/${n.rel} is not the helper's FIFO; relaunch the VM`);
  }
  return fd;
}

/** qemu: the pipe chardev's FIFOs. qemu holds both open read-write, so neither open blocks nor fails for want of a peer. */
function qemuChannel(env: HelperEnv, vmId: string): AgentChannel {
  const inFd = openFifo(env, vmId, HELPER_VM_LEAVES.agentIn, constants.O_WRONLY);
  let out: Socket;
  try {
    out = new Socket({ fd: openFifo(env, vmId, HELPER_VM_LEAVES.agentOut, constants.O_RDONLY), readable: true, writable: false });
  } catch (e) {
    closeSync(inFd);
    throw e;
  }
  const w = ackWaiter();
  ackReader(out, w.onLine);
  out.on("error", (e) => { w.fail(e); });
  return {
    send: (line) => {
      // Below PIPE_BUF: one atomic write, whole or EAGAIN (a FIFO that full means no agent reads it).
      const n = writeSync(inFd, line);
      if (n !== Buffer.byteLength(line)) throw new Error(`short write into ${HELPER_VM_LEAVES.agentIn} (${n} bytes)`);
      return Promise.resolve();
    },
    ack: w.ack,
    withdraw: () => {
      // Read back what qemu has not passed to the guest (it reads only while the guest's port takes data).
      const drain = openFifo(env, vmId, HELPER_VM_LEAVES.agentIn, constants.O_RDONLY);
      try {
        const buf = Buffer.alloc(65536);
        while (readSyncOrZero(drain, buf) > 0);
      } finally {
        closeSync(drain);
      }
    },
    close: () => {
      closeSync(inFd);
      out.destroy();
    },
  };
}

function readSyncOrZero(fd: number, buf: Buffer): number {
  try {
    return readSync(fd, buf);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EAGAIN") return 0;
    throw e;
  }
}

/**
 * Firecracker: its hybrid vsock socket (`CONNECT 52`, answered `OK <host port>`), reached through
 * the O_PATH descriptor of the socket the VMM bound (run directory, or jail), never by name.
 */
async function firecrackerChannel(env: HelperEnv, vmId: string, timeoutMs: number): Promise<AgentChannel> {
  const entry = openVmmSocket(env, vmId, "vsock_socket", HELPER_VM_LEAVES.vsockSocket, "v.sock");
  const sock = createConnection(`/proc/self/fd/${entry.fd}`);
  const w = ackWaiter();
  let greeted: ((line: string) => void) | undefined;
  ackReader(sock, (line) => {
    if (greeted !== undefined) greeted(line);
    else w.onLine(line);
  });
  sock.on("error", (e) => { w.fail(e); });
  // The handshake is bounded like the ack: a socket that never answers CONNECT must not hold the request.
  sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`no answer to CONNECT ${AGENT_VSOCK_PORT} within ${timeoutMs} ms`)));
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", resolve);
      sock.once("error", reject);
    });
    const hello = await new Promise<string>((resolve, reject) => {
      greeted = resolve;
      sock.once("error", reject);
      sock.once("close", () => { reject(new Error("the vsock socket closed before answering CONNECT")); });
      sock.write(`CONNECT ${AGENT_VSOCK_PORT}\n`);
    });
    greeted = undefined;
    sock.setTimeout(0);
    if (!/^OK [0-9]+$/.test(hello.trim())) throw new Error(`vsock CONNECT ${AGENT_VSOCK_PORT} answered ${JSON.stringify(hello.slice(0, 80))}, not OK: is the guest agent listening?`);
  } catch (e) {
    sock.destroy();
    throw e;
  } finally {
    closeSync(entry.fd);
  }
  return {
    send: (line) => new Promise((resolve, reject) => {
      sock.write(line, (e) => {
        if (e == null) resolve();
        else reject(e);
      });
    }),
    ack: w.ack,
    // Nothing to take back: the connection is the request; closing it ends it.
    withdraw: () => undefined,
    close: () => sock.destroy(),
  };
}

/** Wall clock now, in nanoseconds (sub-millisecond: timeOrigin + now()). */
function nowNs(): bigint {
  return BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000)) * 1000n;
}

export function agentMethods(env: HelperEnv): Registration<PeerCred>[] {
  // Random start: acks a previous helper left in a FIFO never match this one's numbers.
  let seq = randomInt(0, 2 ** 31);
  /** One request at a time per VM: two would read each other's acks off one FIFO. */
  const busy = new Map<string, Promise<unknown>>();

  const send = async (vmId: string, kind: "qemu" | "firecracker", identity: VmIdentity, timeoutMs: number): Promise<number> => {
    seq = (seq + 1) % 2 ** 32;
    const mine = seq;
    const extras = { seq: mine, timeNs: nowNs(), seedHex: randomBytes(32).toString("hex") };
    // Checked before anything is opened: a bad field changes nothing.
    try {
      if (composeIdentityLine(identity, extras).length > MAX_LINE) throw new Error(`host_key_b64: the request would be longer than ${MAX_LINE} bytes`);
    } catch (e) {
      throw new RpcError("bad_params", e instanceof Error ? e.message : String(e));
    }
    const channel = kind === "qemu" ? qemuChannel(env, vmId) : await firecrackerChannel(env, vmId, timeoutMs);
    let timer: NodeJS.Timeout | undefined;
    try {
      const started = performance.now();
      // The clock the guest is set to is read at the moment of sending.
      await channel.send(composeIdentityLine(identity, { ...extras, timeNs: nowNs() }));
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => { resolve("timeout"); }, timeoutMs);
      });
      const ack = await Promise.race([channel.ack(mine), timedOut]);
      if (ack === "timeout") {
        channel.withdraw();
        throw new RpcError("operation_failed", `the guest agent of ${vmId} did not answer within ${timeoutMs} ms: its image may have no banger agent (built before snapshots); rebuild it: banger image build --name IMAGE --force`);
      }
      if (!ack.ok && ack.error.startsWith("bad-")) throw new RpcError("operation_failed", `the guest agent of ${vmId} refused the request: its ${ack.error.slice(4)} field did not match the agent's pattern (an agent older or newer than this helper? rebuild the image)`);
      if (!ack.ok) throw new RpcError("operation_failed", `the guest agent of ${vmId} could not apply the identity: step ${ack.error} failed (see the VM's console log)`);
      return Math.round((performance.now() - started) * 10) / 10;
    } finally {
      clearTimeout(timer);
      channel.close();
    }
  };

  return [
    implement(privVmmSendIdentity, async (p, ctx) => {
      const vmId = v.vmId("vm_id", p.vm_id);
      const timeoutMs = v.intInRange("timeout_ms", p.timeout_ms ?? DEFAULT_ACK_TIMEOUT_MS, 100, 120_000);
      // This VM's VMM, launched by this helper (pidfd, identity-checked), before any file is opened.
      env.vmms.signal("pid", p.pid, vmId, 0);
      const identity: VmIdentity = { hostname: p.hostname, mac: p.mac, ip: p.ip, prefix: p.prefix, gateway: p.gateway, nameservers: p.nameservers, host_key_b64: p.host_key_b64 };
      const previous = busy.get(vmId) ?? Promise.resolve();
      const run = previous.catch(() => undefined).then(() => send(vmId, p.kind, identity, timeoutMs));
      busy.set(vmId, run);
      try {
        const ackMs = await run;
        env.logger.child({ op_id: ctx.opId, vm_id: vmId }).info("identity acknowledged by the guest agent", { ack_ms: ackMs });
        return { ack_ms: ackMs };
      } catch (e) {
        throw e instanceof RpcError ? e : new RpcError("operation_failed", `sending the identity to ${vmId}: ${e instanceof Error ? e.message : String(e)}`);
      } finally {
        if (busy.get(vmId) === run) busy.delete(vmId);
      }
    }),
  ];
}
