import { CommandError, type Runner } from "../system/runner.js";
import type { ServiceName } from "./layout.js";
import type { ServiceManager, ServiceStatus } from "./service-manager.js";

const unit = (service: ServiceName): string => `${service}.service`;

/** The services as systemd units, driven through systemctl (argv through the Runner, never a shell). */
export function systemdServices(runner: Runner): ServiceManager & {
  /** Makes systemd read the unit files again and enables (or disables) them for boot. */
  reload(): Promise<void>;
  enable(services: readonly ServiceName[]): Promise<void>;
  disable(services: readonly ServiceName[]): Promise<void>;
} {
  const systemctl = (args: readonly string[]): Promise<unknown> => runner.run(["systemctl", ...args]);
  return {
    mode: "systemd",
    async start(service) { await systemctl(["start", unit(service)]); },
    async stop(service) { await systemctl(["stop", unit(service)]); },
    async restart(service) { await systemctl(["restart", unit(service)]); },
    async status(service): Promise<ServiceStatus> {
      let out: string;
      try {
        out = (await runner.run(["systemctl", "show", "--property=ActiveState,SubState,MainPID,LoadState", unit(service)])).stdout.toString("utf8");
      } catch (e) {
        if (e instanceof CommandError) return { service, running: false, detail: `systemctl show failed: ${e.message}` };
        throw e;
      }
      const props = parseShow(out);
      const pid = Number(props["MainPID"] ?? "0");
      const active = props["ActiveState"] ?? "unknown";
      return {
        service,
        running: active === "active" && pid > 0,
        ...(pid > 0 ? { pid } : {}),
        detail: props["LoadState"] === "not-found" ? "unit not installed" : `${active} (${props["SubState"] ?? "?"})`,
      };
    },
    async reload() { await systemctl(["daemon-reload"]); },
    async enable(services) { if (services.length > 0) await systemctl(["enable", ...services.map(unit)]); },
    async disable(services) { if (services.length > 0) await systemctl(["disable", ...services.map(unit)]); },
  };
}

/** `systemctl show` output: KEY=VALUE lines. */
export function parseShow(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}
