/**
 * The server's YAML config file (deploy/popdns.yaml is the documented example). Flags on the command
 * line win over the file. Unknown keys are errors with line:col, like in zone files.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument } from 'yaml';
import {
  type AnycastPrefix,
  HEALTH_DEFAULTS,
  HEALTH_KEYS,
  type HealthConfig,
  parseDurationMs,
} from '../health/config.js';
import { parseCookiesSection } from '../cookies/config.js';
import { type DnstapConfig, parseDnstapSection } from '../dnstap/config.js';
import type { CookieConfig } from '../cookies/cookies.js';
import { parseRrlSection } from '../rrl/config.js';
import type { RrlConfig } from '../rrl/rrl.js';
import { type LogFormat, logFormat, parseLogFormat } from '../log/log.js';
import { nameFromText } from '../wire/name.js';
import type { ZoneDnssecSettings } from '../zone/types.js';
import { parseDnssecSettings } from '../zone/yamlzone.js';
import { parsePeriod } from '../wire/rdata.js';
import type { SecondarySpec } from '../xfr/secondary.js';
import { defaultControlSocket } from './control-path.js';
import { type ListenAddr, parseListen } from './listen.js';
import {
  checkPrimaryConfig,
  parsePrimaryKey,
  PRIMARY_DEFAULTS,
  PRIMARY_KEYS,
  type PrimaryConfig,
} from '../xfr/config.js';
import { TCP_DEFAULTS, type TcpOptions } from './tcp.js';
import { checkUpdatePolicies, parseUpdatesSection, type UpdatePolicies } from '../update/config.js';
import { parseUpdateLimitsSection, UPDATE_LIMIT_DEFAULTS, type UpdateLimits } from '../update/limits.js';

export interface ServerConfig extends PrimaryConfig {
  zones: string;
  listen: ListenAddr[];
  /** True when listen came from the defaults (an unavailable ::1 is then skipped with a warning). */
  listenDefault: boolean;
  identity: string;
  /** NSID payload; null = never send. Default: the identity. */
  nsid: string | null;
  /** Version string; null = refuse version.server/version.bind. */
  version: string | null;
  metrics: ListenAddr | null;
  workers: number;
  ednsUdpSize: number;
  tcp: TcpOptions;
  /** Seconds to keep answering after SIGTERM while BGP withdraws the prefix. */
  drainSeconds: number;
  /** The `health:` section, read by `popdns health` (ignored by `popdns serve`). */
  health: HealthConfig;
  /** DNSSEC key directory: every zone with keys here is signed. */
  keys: string;
  /** `signing-threads`: threads that sign a big zone at load and refresh; 0 = the serving thread. */
  signingThreads: number;
  /** Per-zone DNSSEC settings (lower-case origin with trailing dot), for zones that cannot carry them. */
  dnssec: Map<string, ZoneDnssecSettings | false>;
  /** Response rate limiting (`rrl:`); null = off. */
  rrl: RrlConfig | null;
  /** DNS cookies (`cookies:`); null = off. */
  cookies: CookieConfig | null;
  /** dnstap query/response logging (`dnstap:`, src/dnstap); null = off. */
  dnstap: DnstapConfig | null;
  /** Zones this server follows as a secondary (`secondaries:`). */
  secondaries: SecondarySpec[];
  /** RFC 9432 catalog zones whose members this server follows (`catalogs:`). */
  catalogs: SecondarySpec[];
  /** Control socket path (`control:`); null = none. Default: defaultControlSocket(). */
  control: string | null;
  /** True when `control` came from the defaults (a socket that cannot be opened is then a warning). */
  controlDefault: boolean;
  /** `log-format: text | json`. */
  logFormat: LogFormat;
  /** RFC 2136 update policies (`updates:`, src/update); a zone not listed refuses updates. */
  updates: UpdatePolicies;
  /** Rate and size limits of dynamic updates (`update-limits:`, src/update/limits.ts). */
  updateLimits: UpdateLimits;
}

export class ConfigError extends Error {
  readonly code = 'POPDNS_E_CONFIG';
}

export const DEFAULT_LISTEN = ['127.0.0.1:1053', '[::1]:1053'];

export function defaultConfig(version: string, cores: number): ServerConfig {
  const id = hostname();
  return {
    zones: 'zones',
    listen: DEFAULT_LISTEN.map(parseListen),
    listenDefault: true,
    identity: id,
    nsid: id,
    version: `popdns ${version}`,
    metrics: parseListen('127.0.0.1:9153'),
    workers: cores,
    ednsUdpSize: 1232,
    tcp: { ...TCP_DEFAULTS },
    drainSeconds: 5,
    health: cloneHealth(HEALTH_DEFAULTS),
    keys: 'keys',
    signingThreads: cores,
    dnssec: new Map(),
    rrl: null,
    cookies: null,
    dnstap: null,
    ...PRIMARY_DEFAULTS,
    transfer: { allow: [], notify: [] },
    secondaries: [],
    catalogs: [],
    control: defaultControlSocket(),
    controlDefault: true,
    logFormat: logFormat(),
    updates: new Map(),
    updateLimits: { ...UPDATE_LIMIT_DEFAULTS },
  };
}

const KEYS = [
  'zones',
  'listen',
  'identity',
  'nsid',
  'version',
  'metrics',
  'workers',
  'edns-udp-size',
  'tcp-idle-timeout',
  'tcp-max-connections',
  'drain',
  'health',
  'keys',
  'signing-threads',
  'dnssec',
  'rrl',
  'cookies',
  'dnstap',
  ...PRIMARY_KEYS,
  'secondaries',
  'catalogs',
  'control',
  'log-format',
  'updates',
  'update-limits',
] as const;

function cloneHealth(h: HealthConfig): HealthConfig {
  return { ...h, transports: [...h.transports], prefixes: h.prefixes.map((p) => ({ ...p })) };
}

/** A quoted whole number in a config value (`"2"`), optionally signed: decimal digits only. */
function isNumberText(v: unknown): boolean {
  return typeof v === 'string' && /^\s*-?\d+\s*$/.test(v);
}

/** Reads a config file over `base`; throws ConfigError naming file:line:col. */
export function loadConfigFile(path: string, base: ServerConfig): ServerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read config: ${(e as Error).message} [POPDNS_E_CONFIG]`);
  }
  return parseConfig(text, path, base);
}

export function parseConfig(text: string, file: string, base: ServerConfig): ServerConfig {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  const fail = (node: Node | null | undefined, msg: string, offset?: number): never => {
    const p = lc.linePos(offset ?? node?.range?.[0] ?? 0);
    throw new ConfigError(`${file}:${p.line}:${p.col}: error: ${msg} [POPDNS_E_CONFIG]`);
  };
  const e = doc.errors[0];
  if (e) fail(null, e.message.split('\n')[0]!, e.pos[0]);
  const cfg: ServerConfig = {
    ...base,
    tcp: { ...base.tcp },
    health: cloneHealth(base.health),
    dnssec: new Map(base.dnssec),
    tsigKeys: new Map(base.tsigKeys),
    secondaries: [...base.secondaries],
    catalogs: [...base.catalogs],
    updates: new Map(base.updates),
    updateLimits: { ...base.updateLimits },
  };
  if (doc.contents === null) return cfg;
  const top = doc.contents;
  if (!isMap(top)) return fail(top, 'the config file is a mapping of settings');
  const str = (n: Node, what: string): string => {
    if (!isScalar(n) || (typeof n.value !== 'string' && typeof n.value !== 'number'))
      fail(n, `${what} must be a string`);
    return String((n as { value: unknown }).value);
  };
  const num = (n: Node, what: string, min: number, max: number): number => {
    // A YAML number, or a quoted one; Number() would read an empty value (`key:`, `""`) as 0.
    const v =
      isScalar(n) && (typeof n.value === 'number' || isNumberText(n.value)) ? Number(n.value) : Number.NaN;
    if (!Number.isInteger(v) || v < min || v > max) fail(n, `${what} must be a whole number ${min}..${max}`);
    return v;
  };
  const seconds = (n: Node, what: string): number => {
    const v = isScalar(n) ? parsePeriod(String(n.value)) : undefined;
    if (v === undefined) fail(n, `${what} must be seconds or a duration like 10s`);
    return v as number;
  };
  const addr = (n: Node, what: string): ListenAddr => {
    try {
      return parseListen(str(n, what));
    } catch (x) {
      return fail(n, (x as Error).message.replace(' [POPDNS_E_CONFIG]', ''));
    }
  };
  const off = (n: Node): boolean => isScalar(n) && n.value === false;
  const duration = (n: Node, what: string): number => {
    const v = isScalar(n) ? parseDurationMs(String(n.value)) : undefined;
    if (v === undefined || v <= 0) fail(n, `${what} must be a duration like 500ms, 1s or 2m`);
    return v as number;
  };
  const list = (n: Node): Node[] => (isSeq(n) ? (n.items as Node[]) : [n]);
  const parseHealth = (node: Node, h: HealthConfig): void => {
    if (!isMap(node)) return void fail(node, 'health must be a mapping of settings');
    for (const pair of node.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      const v = pair.value as Node;
      switch (k as (typeof HEALTH_KEYS)[number]) {
        case 'interval':
          h.intervalMs = duration(v, 'health.interval');
          break;
        case 'timeout':
          h.timeoutMs = duration(v, 'health.timeout');
          break;
        case 'rise':
          h.rise = num(v, 'health.rise', 1, 100);
          break;
        case 'fall':
          h.fall = num(v, 'health.fall', 1, 100);
          break;
        case 'targets':
          h.targets = list(v).map((i) => addr(i, 'health.targets'));
          break;
        case 'transports':
          h.transports = list(v).map((i) => {
            const t = str(i, 'health.transports');
            if (t !== 'udp' && t !== 'tcp') fail(i, 'health.transports are udp and/or tcp');
            return t as 'udp' | 'tcp';
          });
          break;
        case 'zones':
          h.zones = list(v).map((i) => zoneName(i, 'health.zones'));
          break;
        case 'canary':
          h.canary = off(v) ? null : zoneName(v, 'health.canary');
          break;
        case 'max-serial-lag':
          h.maxSerialLagMs = off(v) ? null : duration(v, 'health.max-serial-lag');
          break;
        case 'maintenance-file':
          h.maintenanceFile = off(v) ? null : str(v, 'health.maintenance-file');
          break;
        case 'readyz':
          h.readyzOff = off(v);
          h.readyz = off(v) ? null : str(v, 'health.readyz');
          break;
        case 'bird-socket':
          h.birdSocket = str(v, 'health.bird-socket');
          break;
        case 'state-file':
          h.stateFile = off(v) ? null : str(v, 'health.state-file');
          break;
        case 'prefixes':
          h.prefixes = list(v).map((i) => prefix(i));
          break;
        case 'metrics':
          h.metrics = off(v) ? null : addr(v, 'health.metrics');
          break;
        default:
          fail(pair.key as Node, `unknown health setting "${k}" (known: ${HEALTH_KEYS.join(', ')})`);
      }
    }
    if (h.timeoutMs > h.intervalMs) fail(node, 'health.timeout must not exceed health.interval');
  };
  const zoneName = (n: Node, what: string): string => {
    const s = str(n, what);
    try {
      nameFromText(s.endsWith('.') ? s : `${s}.`);
    } catch (x) {
      fail(n, `${what}: ${(x as Error).message}`);
    }
    return s.endsWith('.') ? s : `${s}.`;
  };
  const prefix = (n: Node): AnycastPrefix => {
    if (!isMap(n))
      return fail(n, 'each of health.prefixes is { prefix: 198.51.100.0/24, protocol: anycast4 }');
    const p: Partial<AnycastPrefix> = {};
    for (const pair of n.items) {
      const k = isScalar(pair.key) ? String(pair.key.value) : '';
      const v = pair.value as Node;
      if (k === 'prefix') {
        p.prefix = str(v, 'prefix');
        if (!/^[0-9a-fA-F:.]+\/[0-9]{1,3}$/.test(p.prefix))
          fail(v, `"${p.prefix}" is not an address/length prefix`);
      } else if (k === 'protocol') {
        p.protocol = str(v, 'protocol');
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(p.protocol))
          fail(v, `"${p.protocol}" is not a BIRD protocol name`);
      } else fail(pair.key as Node, `unknown prefix setting "${k}" (known: prefix, protocol)`);
    }
    if (!p.prefix || !p.protocol) fail(n, 'a prefix needs both prefix and protocol');
    return p as AnycastPrefix;
  };
  const specNodes = new Map<SecondarySpec, Node>();
  for (const pair of top.items) {
    const k = isScalar(pair.key) ? String(pair.key.value) : '';
    const v = pair.value as Node;
    switch (k as (typeof KEYS)[number]) {
      case 'zones':
        cfg.zones = str(v, 'zones');
        break;
      case 'listen': {
        const items = isSeq(v) ? (v.items as Node[]) : [v];
        cfg.listen = items.map((i) => addr(i, 'listen'));
        cfg.listenDefault = false;
        break;
      }
      case 'identity':
        cfg.identity = str(v, 'identity');
        if (base.nsid === base.identity) cfg.nsid = cfg.identity;
        break;
      case 'nsid':
        cfg.nsid = isScalar(v) && v.value === false ? null : str(v, 'nsid');
        break;
      case 'version':
        cfg.version = isScalar(v) && v.value === false ? null : str(v, 'version');
        break;
      case 'metrics':
        cfg.metrics = isScalar(v) && v.value === false ? null : addr(v, 'metrics');
        break;
      case 'workers':
        cfg.workers = num(v, 'workers', 1, 256);
        break;
      case 'edns-udp-size':
        cfg.ednsUdpSize = num(v, 'edns-udp-size', 512, 4096);
        break;
      case 'tcp-idle-timeout':
        cfg.tcp.idleTimeout = seconds(v, 'tcp-idle-timeout') * 1000;
        break;
      case 'tcp-max-connections':
        cfg.tcp.maxConnections = num(v, 'tcp-max-connections', 1, 1_000_000);
        break;
      case 'drain':
        cfg.drainSeconds = seconds(v, 'drain');
        break;
      case 'health':
        parseHealth(v, cfg.health);
        break;
      case 'keys':
        cfg.keys = str(v, 'keys');
        break;
      case 'signing-threads':
        cfg.signingThreads = num(v, 'signing-threads', 0, 256);
        break;
      case 'dnssec': {
        if (!isMap(v)) fail(v, 'dnssec is a mapping of zone names to settings, e.g. example.net: nsec3');
        for (const zp of (v as { items: { key: unknown; value: unknown }[] }).items) {
          const zone = zoneName(zp.key as Node, 'dnssec zone');
          const settings = parseDnssecSettings(zp.value as Node, (_code, msg, n) => fail(n, msg));
          if (settings !== undefined) cfg.dnssec.set(zone.toLowerCase(), settings);
        }
        break;
      }
      case 'rrl':
        cfg.rrl = off(v) ? null : parseRrlSection(v, fail);
        break;
      case 'cookies':
        cfg.cookies = off(v) ? null : parseCookiesSection(v, fail);
        break;
      case 'dnstap':
        cfg.dnstap = off(v) ? null : parseDnstapSection(v, fail);
        break;
      case 'data-dir':
      case 'tsig-keys':
      case 'transfer':
        parsePrimaryKey(k as (typeof PRIMARY_KEYS)[number], v, cfg, fail);
        break;
      case 'secondaries':
        cfg.secondaries = parseSecondaries(v, 'secondaries', fail, str, specNodes);
        break;
      case 'catalogs':
        cfg.catalogs = parseSecondaries(v, 'catalogs', fail, str, specNodes);
        break;
      case 'control':
        cfg.control = off(v) ? null : str(v, 'control');
        cfg.controlDefault = false;
        break;
      case 'log-format': {
        const f = parseLogFormat(str(v, 'log-format'));
        if (!f) fail(v, 'log-format is text or json');
        cfg.logFormat = f as LogFormat;
        break;
      }
      case 'updates':
        cfg.updates = parseUpdatesSection(v, fail);
        break;
      case 'update-limits':
        cfg.updateLimits = parseUpdateLimitsSection(v, fail);
        break;
      default:
        fail(pair.key as Node, `unknown setting "${k}" (known: ${KEYS.join(', ')})`);
    }
  }
  checkPrimaryConfig(cfg, fail);
  checkSecondaries(cfg, specNodes, top, fail);
  checkUpdatePolicies(cfg.updates, cfg.tsigKeys, fail, top);
  return cfg;
}

type Fail = (node: Node | null | undefined, msg: string) => never;
type Str = (n: Node, what: string) => string;

/** A primary's address: `192.0.2.1:53`, `[2001:db8::1]:53`, or without the port (53). */
function parsePrimary(text: string): ListenAddr {
  if (/^[0-9.]+$/.test(text)) return parseListen(`${text}:53`);
  if (/^[0-9a-fA-F:]+$/.test(text) && text.includes(':')) return parseListen(`[${text}]:53`);
  if (/^\[[^\]]+\]$/.test(text)) return parseListen(`${text}:53`);
  return parseListen(text);
}

/**
 * `secondaries:` / `catalogs:`: a list of `{ zone, primaries: [ADDR:PORT…], key }` (key optional: a
 * name from tsig-keys).
 */
function parseSecondaries(
  node: Node,
  what: string,
  fail: Fail,
  str: Str,
  nodes: Map<SecondarySpec, Node>,
): SecondarySpec[] {
  if (!isSeq(node)) fail(node, `${what} is a list of { zone, primaries, key }`);
  const out: SecondarySpec[] = [];
  for (const item of (node as { items: Node[] }).items) {
    if (!isMap(item))
      fail(item, `each of ${what} is { zone: example.org, primaries: ["192.0.2.1:53"], key: NAME }`);
    let zone: string | null = null;
    let primaries: ListenAddr[] = [];
    let key: string | null = null;
    for (const p of (item as { items: { key: unknown; value: unknown }[] }).items) {
      const k = isScalar(p.key) ? String(p.key.value) : '';
      const v = p.value as Node;
      if (k === 'zone') {
        const z = str(v, `${what}.zone`);
        zone = z.endsWith('.') ? z.toLowerCase() : `${z.toLowerCase()}.`;
        try {
          nameFromText(zone);
        } catch (x) {
          fail(v, `${what}.zone "${z}": ${(x as Error).message}`);
        }
      } else if (k === 'primaries') {
        const items = isSeq(v) ? (v.items as Node[]) : [v];
        primaries = items.map((i) => {
          try {
            return parsePrimary(str(i, `${what}.primaries`));
          } catch (x) {
            return fail(
              i,
              `${what}.primaries: ${(x as Error).message.replace('listen address', 'address').replace(' [POPDNS_E_CONFIG]', '')}`,
            );
          }
        });
      } else if (k === 'key') {
        if (isScalar(v) && v.value === null) key = null;
        else {
          const kn = str(v, `${what}.key`).toLowerCase();
          key = kn.endsWith('.') ? kn : `${kn}.`;
        }
      } else fail(p.key as Node, `unknown ${what} setting "${k}" (known: zone, primaries, key)`);
    }
    if (!zone) fail(item, `a ${what} entry needs zone`);
    if (primaries.length === 0) fail(item, `${what} entry ${zone} needs at least one primary`);
    const spec: SecondarySpec = {
      zone: zone!,
      primaries: primaries.map((a) => ({ host: a.host, port: a.port })),
      key,
    };
    nodes.set(spec, item);
    out.push(spec);
  }
  return out;
}

/** Every key named by a secondary exists, and no zone is named twice across secondaries and catalogs. */
function checkSecondaries(cfg: ServerConfig, nodes: Map<SecondarySpec, Node>, top: Node, fail: Fail): void {
  const seen = new Set<string>();
  for (const s of [...cfg.secondaries, ...cfg.catalogs]) {
    const node = nodes.get(s) ?? top;
    if (seen.has(s.zone)) fail(node, `zone ${s.zone} is named more than once in secondaries/catalogs`);
    seen.add(s.zone);
    if (s.key !== null && !cfg.tsigKeys.has(s.key))
      fail(node, `key ${s.key} of ${s.zone} is not in tsig-keys`);
  }
}
