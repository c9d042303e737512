import type { ServiceName } from "./layout.js";

/** What a service manager knows of one service. */
export interface ServiceStatus {
  readonly service: ServiceName;
  readonly running: boolean;
  /** The main process, when running. */
  readonly pid?: number | undefined;
  /** Manager-specific state, e.g. systemd's ActiveState/SubState or "stale pidfile". */
  readonly detail: string;
}

/**
 * Starts and stops the two services, whatever runs them (systemd units, or detached processes with
 * pidfiles). Every implementation leaves VMMs alone: stopping a helper never signals its children
 * (KillMode=process; the detached mode signals only the pid it recorded, never a group), so
 * running VMs survive and the next daemon re-adopts them.
 */
export interface ServiceManager {
  readonly mode: "systemd" | "detached";
  start(service: ServiceName): Promise<void>;
  stop(service: ServiceName): Promise<void>;
  restart(service: ServiceName): Promise<void>;
  status(service: ServiceName): Promise<ServiceStatus>;
}
