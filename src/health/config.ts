/**
 * The `health:` section of the PoP config file (deploy/popdns.yaml). `popdns health --config FILE`
 * reads the same file as `popdns serve`, so the probe checks exactly the listeners and zones the
 * server was told to serve, and one file describes the whole PoP.
 */
import type { ListenAddr } from '../server/listen.js';

export interface AnycastPrefix {
  /** The prefix BIRD announces, e.g. 198.51.100.0/24 (for logs and metric labels). */
  prefix: string;
  /** The BIRD `protocol static` that originates it; the probe enables/disables it. */
  protocol: string;
}

export interface HealthConfig {
  /** Milliseconds between probe rounds. */
  intervalMs: number;
  /** Milliseconds a single DNS query may take. */
  timeoutMs: number;
  /** Consecutive good rounds before announcing. */
  rise: number;
  /** Consecutive bad rounds before withdrawing. */
  fall: number;
  /** Addresses to query; null = the server's `listen` addresses. */
  targets: ListenAddr[] | null;
  transports: ('udp' | 'tcp')[];
  /** Zones whose SOA must answer; null = every zone file in the server's `zones` directory. */
  zones: string[] | null;
  /** Optional name that must answer NOERROR with data (type A), e.g. a monitoring record. */
  canary: string | null;
  /** Withdraw when the served serial has been behind the zone file on disk for this long (ms). */
  maxSerialLagMs: number | null;
  /** If this file exists the PoP is in maintenance: withdraw at once. */
  maintenanceFile: string | null;
  /** The server's /readyz URL: 503 (draining) withdraws at once; null = derived from `metrics`. */
  readyz: string | null;
  readyzOff: boolean;
  birdSocket: string;
  /** The BIRD include file with `define <PROTO>_DISABLED = 0|1;` lines; null = socket only. */
  stateFile: string | null;
  prefixes: AnycastPrefix[];
  /** The probe's own /metrics listener; null = none. */
  metrics: ListenAddr | null;
}

export const HEALTH_DEFAULTS: HealthConfig = {
  intervalMs: 1000,
  timeoutMs: 800,
  rise: 2,
  fall: 3,
  targets: null,
  transports: ['udp', 'tcp'],
  zones: null,
  canary: null,
  maxSerialLagMs: null,
  maintenanceFile: '/etc/popdns/maintenance',
  readyz: null,
  readyzOff: false,
  birdSocket: '/run/bird/bird.ctl',
  stateFile: '/run/popdns/anycast.conf',
  prefixes: [],
  metrics: { host: '127.0.0.1', port: 9154, family: 4 },
};

export const HEALTH_KEYS = [
  'interval',
  'timeout',
  'rise',
  'fall',
  'targets',
  'transports',
  'zones',
  'canary',
  'max-serial-lag',
  'maintenance-file',
  'readyz',
  'bird-socket',
  'state-file',
  'prefixes',
  'metrics',
] as const;

/** `500ms`, `1.5s`, `2s`, `1m`, or a plain number of seconds → milliseconds; undefined if malformed. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) return undefined;
  const mult = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * mult);
}

/** The BIRD constant that the state file defines for a protocol: anycast4 → ANYCAST4_DISABLED. */
export function disabledConstant(protocol: string): string {
  return `${protocol.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}_DISABLED`;
}
