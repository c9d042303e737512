import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer, Socket } from "node:net";
import { AGENT_PORT_NAME, AGENT_VSOCK_PORT, LineSplitter } from "../../src/vmm/agent-line.js";

/** The host port Firecracker reports for a host-initiated connection (`OK <port>`): its first ephemeral one. */
const HOST_PORT = 1073741824;

/**
 * The double's vsock device, for the guest agent only: qemu has no Firecracker-style hybrid vsock,
 * so the device becomes a virtio-serial port named org.banger.agent on a pipe chardev (FIFOs in a
 * temp dir of ours), and `uds_path` serves the hybrid vsock protocol: `CONNECT 52\n` is answered
 * `OK <port>\n`, then bytes flow between the connection and the port. The guest side is then the
 * same as under qemu. Returns the qemu arguments; `cleanup` removes the socket and FIFOs.
 */
export function vsockAgent(udsPath: string): { argv: string[]; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "fc-double-agent-"));
  const pipe = join(dir, "agent");
  execFileSync("mkfifo", ["-m", "600", `${pipe}.in`, `${pipe}.out`]);
  let current: Socket | undefined;
  let toGuest: number | undefined;
  let fromGuest: Socket | undefined;
  /**
   * Opened once qemu holds the FIFOs (before that, a non-blocking writer finds no reader, ENXIO);
   * then their names go: open descriptors keep them alive, and a SIGKILLed double leaves no dir.
   */
  const attach = (): boolean => {
    try {
      toGuest ??= openSync(`${pipe}.in`, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      return false;
    }
    fromGuest = new Socket({ fd: openSync(`${pipe}.out`, constants.O_RDONLY | constants.O_NONBLOCK), readable: true, writable: false });
    fromGuest.on("data", (chunk: Buffer) => current?.write(chunk));
    rmSync(dir, { recursive: true, force: true });
    return true;
  };
  const poll = setInterval(() => {
    if (attach()) clearInterval(poll);
  }, 50);
  const server = createServer((conn) => {
    const split = new LineSplitter();
    let connected = false;
    conn.on("error", () => undefined);
    conn.on("data", (chunk: Buffer) => {
      if (connected) {
        if (toGuest !== undefined) writeSync(toGuest, chunk);
        return;
      }
      const [hello] = split.push(chunk);
      if (hello === undefined) return;
      if (hello.trim() !== `CONNECT ${AGENT_VSOCK_PORT}`) {
        conn.destroy();
        return;
      }
      if (fromGuest === undefined) {
        conn.destroy();
        return;
      }
      connected = true;
      current = conn;
      conn.write(`OK ${HOST_PORT}\n`);
    });
  });
  server.listen(udsPath);
  return {
    argv: ["-device", "virtio-serial-device", "-chardev", `pipe,id=agent,path=${pipe}`, "-device", `virtserialport,chardev=agent,name=${AGENT_PORT_NAME}`],
    cleanup: () => {
      clearInterval(poll);
      server.close();
      fromGuest?.destroy();
      if (toGuest !== undefined) closeSync(toGuest);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
