import { request } from "node:http";

/** A non-2xx answer from the Firecracker API, carrying its fault_message. */
export class FirecrackerApiError extends Error {
  constructor(readonly method: string, readonly path: string, readonly status: number, readonly faultMessage: string) {
    super(`firecracker API ${method} ${path} -> ${status}: ${faultMessage}`);
    this.name = "FirecrackerApiError";
  }
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/**
 * One HTTP/1.1 request over the Firecracker API unix socket. Content-Length
 * is ALWAYS set (Firecracker reads bodies only by Content-Length; a chunked
 * body would arrive empty). Non-2xx answers throw FirecrackerApiError.
 */
export async function fcRequest(socketPath: string, method: "GET" | "PUT" | "PATCH", path: string, body?: unknown, timeoutMs = 5000): Promise<ApiResponse> {
  const payload = body === undefined ? "" : JSON.stringify(body);
  const headers: Record<string, string | number> = { "Content-Length": Buffer.byteLength(payload), Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method, path, headers, timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: unknown = undefined;
        if (text !== "") {
          try {
            parsed = JSON.parse(text);
          } catch {
            parsed = text;
          }
        }
        const status = res.statusCode ?? 0;
        if (status < 200 || status >= 300) {
          const fault = typeof parsed === "object" && parsed !== null && "fault_message" in parsed ? String(parsed.fault_message) : text;
          reject(new FirecrackerApiError(method, path, status, fault));
          return;
        }
        resolve({ status, body: parsed });
      });
      res.on("error", reject);
    });
    req.on("timeout", () => { req.destroy(new Error(`firecracker API ${method} ${path}: no answer within ${timeoutMs} ms`)); });
    req.on("error", (e) => { reject(e instanceof FirecrackerApiError ? e : new Error(`firecracker API ${method} ${path} on ${socketPath}: ${e.message}`, { cause: e })); });
    req.end(payload);
  });
}

/** Poll until the API answers GET / (socket file appears, then a 200), like the Go SDK. */
export async function waitForApi(socketPath: string, timeoutMs: number, isAlive: () => boolean = () => true): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (!isAlive()) throw new Error(`firecracker exited before its API socket ${socketPath} came up; see the VM's console log`);
    try {
      await fcRequest(socketPath, "GET", "/", undefined, 500);
      return;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`firecracker API socket ${socketPath} not ready after ${timeoutMs} ms: ${last instanceof Error ? last.message : String(last)}`);
}

/** Freeze or thaw the guest (`PATCH /vm`); answers whether it is paused afterwards (`GET /`, the instance info's state). */
export async function fcSetPaused(socketPath: string, paused: boolean, timeoutMs?: number): Promise<boolean> {
  await fcRequest(socketPath, "PATCH", "/vm", { state: paused ? "Paused" : "Resumed" }, timeoutMs);
  const info = (await fcRequest(socketPath, "GET", "/", undefined, timeoutMs)).body as { state?: unknown } | undefined;
  if (info?.state !== "Paused" && info?.state !== "Running") throw new Error(`firecracker GET / on ${socketPath} gave state ${JSON.stringify(info?.state)}, not Paused or Running`);
  return info.state === "Paused";
}
