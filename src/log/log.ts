/**
 * The one log format of every popdns process (serve, its workers, the health probe, CLI errors):
 * one line per event on stderr (journald takes it from there), with a timestamp, a level, the
 * component that speaks, the message, and the stable `POPDNS_*` code when there is one.
 *
 * ```ts
 * import * as log from '../log/log.js';
 * log.info('zone', 'example.com. loaded', { serial: 2026113001, records: 32 });
 * log.error('server', 'cannot read zone directory zones', { code: 'POPDNS_E_ZONES_DIR' });
 * ```
 *
 * Text (the default), one line:
 * `2026-11-30T08:31:59.123Z info zone: example.com. loaded serial=2026113001 records=32`
 * `2026-11-30T08:31:59.123Z error server: cannot read zone directory zones [POPDNS_E_ZONES_DIR]`
 *
 * JSON (`log-format: json`, for Loki/Elastic), one object per line:
 * `{"time":"…","level":"error","component":"server","msg":"cannot read …","code":"POPDNS_E_ZONES_DIR"}`
 *
 * A code written in the message as `[POPDNS_E_X]` (as older messages do) is found there too: JSON
 * gets it as `code`. Never call this on the query path (no per-query logging: that is dnstap's job).
 * This module imports nothing of ours, so every layer (zone, server, health, cli) can use it.
 */

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'text' | 'json';
export type LogValue = string | number | boolean | null | undefined;

/** Extra key/value pairs of one line; `code` is the stable POPDNS_E_* / POPDNS_W_* code. */
export interface LogFields {
  code?: string;
  [key: string]: LogValue;
}

/** One log event, as handed to the sink. */
export interface LogRecord {
  /** Unix time in milliseconds. */
  time: number;
  level: LogLevel;
  component: string;
  msg: string;
  fields: LogFields;
}

export const LOG_FORMATS: readonly LogFormat[] = ['text', 'json'];
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
const CODE_IN_MSG = /\s*\[(POPDNS_[EW]_[A-Z0-9_]+)\]/;

interface LogState {
  format: LogFormat;
  level: LogLevel;
  /** Fields added to every line (e.g. `worker: 1` in a worker process). */
  context: LogFields;
  write: (line: string) => void;
}

const state: LogState = {
  format: process.env.POPDNS_LOG_FORMAT === 'json' ? 'json' : 'text',
  level: 'info',
  context: {},
  write: (line) => {
    process.stderr.write(line);
  },
};

/**
 * Sets the format, the lowest level written, fields added to every line, or the sink (tests).
 * Only the options given change. The initial format comes from POPDNS_LOG_FORMAT (text|json), so
 * errors printed before a config file is read can already be JSON.
 */
export function configureLog(o: {
  format?: LogFormat;
  level?: LogLevel;
  context?: LogFields;
  write?: (line: string) => void;
}): void {
  if (o.format) state.format = o.format;
  if (o.level) state.level = o.level;
  if (o.context) state.context = { ...o.context };
  if (o.write) state.write = o.write;
}

/** The current format (the health probe and the server pass it on to what they start). */
export function logFormat(): LogFormat {
  return state.format;
}

/** True when `level` would be written: guard expensive messages with it. */
export function enabled(level: LogLevel): boolean {
  return RANK[level] >= RANK[state.level];
}

function textValue(v: LogValue): string {
  const s = String(v);
  return s === '' || /[\s"=]/.test(s) ? JSON.stringify(s) : s;
}

/** One record as one line (with its newline) in `format`. */
export function formatRecord(r: LogRecord, format: LogFormat): string {
  const ts = new Date(r.time).toISOString();
  let msg = r.msg;
  let code = r.fields.code;
  const inMsg = CODE_IN_MSG.exec(msg);
  if (inMsg) {
    code ??= inMsg[1];
    if (format === 'json' || code === inMsg[1]) msg = msg.replace(CODE_IN_MSG, '');
  }
  const rest = Object.entries(r.fields).filter(([k, v]) => k !== 'code' && v !== undefined);
  if (format === 'json') {
    const o: Record<string, LogValue> = {
      time: ts,
      level: r.level,
      component: r.component,
      msg: msg.trimEnd(),
    };
    if (code) o.code = code;
    for (const [k, v] of rest) if (!(k in o)) o[k] = v;
    return `${JSON.stringify(o)}\n`;
  }
  // Multi-line messages stay one log line: journald and grep see one event.
  let line = `${ts} ${r.level} ${r.component}: ${msg.trimEnd().replace(/\n/g, '\\n')}`;
  for (const [k, v] of rest) if (v !== null) line += ` ${k}=${textValue(v)}`;
  if (code) line += ` [${code}]`;
  return `${line}\n`;
}

/** Writes one line at `level` (if enabled). Prefer the four shorthands below. */
export function write(level: LogLevel, component: string, msg: string, fields?: LogFields): void {
  if (RANK[level] < RANK[state.level]) return;
  let f = state.context;
  if (fields) {
    f = { ...fields };
    for (const [k, v] of Object.entries(state.context)) if (!(k in f)) f[k] = v;
  }
  state.write(formatRecord({ time: Date.now(), level, component, msg, fields: f }, state.format));
}

export function debug(component: string, msg: string, fields?: LogFields): void {
  write('debug', component, msg, fields);
}
export function info(component: string, msg: string, fields?: LogFields): void {
  write('info', component, msg, fields);
}
export function warn(component: string, msg: string, fields?: LogFields): void {
  write('warn', component, msg, fields);
}
/** An error; one whose stable code is a warning's (`POPDNS_W_*`) is written at `warn`: the code decides. */
export function error(component: string, msg: string, fields?: LogFields): void {
  const code = fields?.code ?? CODE_IN_MSG.exec(msg)?.[1];
  write(code?.startsWith('POPDNS_W_') ? 'warn' : 'error', component, msg, fields);
}

/** Parses `log-format` / POPDNS_LOG_FORMAT; undefined when it is neither text nor json. */
export function parseLogFormat(s: string): LogFormat | undefined {
  return (LOG_FORMATS as readonly string[]).includes(s) ? (s as LogFormat) : undefined;
}
