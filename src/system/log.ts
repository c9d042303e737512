/** Fields every JSON log line may carry; `op_id` follows one request across processes. */
export type LogFields = Readonly<Record<string, unknown>>;

export type LogLevel = "debug" | "info" | "warn" | "error";
const LEVEL_ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose every line also carries `fields` (e.g. `{ op_id }`). */
  child(fields: LogFields): Logger;
}

export interface LogSink {
  write(line: string): unknown;
}

/** JSON-lines logger: one object per line, `ts`, `level`, `msg`, then bound and call fields. */
export function createLogger(sink: LogSink, base: LogFields = {}, minLevel: LogLevel = "info"): Logger {
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (LEVEL_ORDER[level] < LEVEL_ORDER[minLevel]) return;
    const line = { ts: new Date().toISOString(), level, msg, ...base, ...fields };
    sink.write(JSON.stringify(line, errorReplacer) + "\n");
  };
  return {
    debug: (m, f) => { emit("debug", m, f); },
    info: (m, f) => { emit("info", m, f); },
    warn: (m, f) => { emit("warn", m, f); },
    error: (m, f) => { emit("error", m, f); },
    child: (fields) => createLogger(sink, { ...base, ...fields }, minLevel),
  };
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) return { name: value.name, message: value.message };
  if (typeof value === "bigint") return value.toString();
  return value;
}

export const silentLogger: Logger = createLogger({ write: () => undefined });
