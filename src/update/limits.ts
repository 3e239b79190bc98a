/**
 * Rate and size limits of RFC 2136 dynamic updates (`update-limits:`), so a misbehaving or leaked
 * key cannot grow a zone without bound. Over a limit the update is REFUSED, nothing is applied, the
 * log line carries POPDNS_W_UPDATE_LIMIT and the update counts as REFUSED in popdns_updates_total.
 *
 * ```yaml
 * update-limits:
 *   max-records-per-update: 1000   # records in one UPDATE's prerequisite + update sections
 *   max-records: 1000000           # records a zone may hold after an update
 *   max-records-per-type: 100      # records in one RRset an update adds to
 *   rate: 10                       # updates per second per TSIG key (token bucket) …
 *   burst: 100                     # … and how many may come at once
 * ```
 */
import { isMap, isScalar, type Node } from 'yaml';

/** The limits; every count is a whole number ≥ 1, `rate` may be 0 (no rate limit). */
export interface UpdateLimits {
  /** Most records in one update's prerequisite and update sections together. */
  maxRecordsPerUpdate: number;
  /** Most records a zone may hold after an update (its SOA included). */
  maxRecords: number;
  /** Most records an RRset may hold after an update added to it (RRsets it did not touch are not checked). */
  maxRecordsPerType: number;
  /** Updates per second one TSIG key may send (refill rate of its token bucket); 0 = unlimited. */
  rate: number;
  /** Bucket size: updates a key may send at once after a quiet spell. */
  burst: number;
}

/** The defaults (README "Dynamic updates", deploy/popdns.yaml). */
export const UPDATE_LIMIT_DEFAULTS: Readonly<UpdateLimits> = {
  maxRecordsPerUpdate: 1000,
  maxRecords: 1_000_000,
  maxRecordsPerType: 100,
  rate: 10,
  burst: 100,
};

const FIELDS: Record<string, keyof UpdateLimits> = {
  'max-records-per-update': 'maxRecordsPerUpdate',
  'max-records': 'maxRecords',
  'max-records-per-type': 'maxRecordsPerType',
  rate: 'rate',
  burst: 'burst',
};

type Fail = (node: Node | null | undefined, msg: string) => never;

/**
 * Parses the `update-limits:` section over the defaults. Errors go through `fail` (line:col of the
 * node, POPDNS_E_CONFIG). `rate` is a number ≥ 0 (fractions allowed: 0.5 = one update every 2 s).
 */
export function parseUpdateLimitsSection(node: Node, fail: Fail): UpdateLimits {
  const out: UpdateLimits = { ...UPDATE_LIMIT_DEFAULTS };
  if (isScalar(node) && node.value === null) return out;
  if (!isMap(node))
    fail(node, `update-limits is a mapping of ${Object.keys(FIELDS).join(', ')} [POPDNS_E_UPDATE_CONFIG]`);
  for (const p of (node as { items: { key: unknown; value: unknown }[] }).items) {
    const k = isScalar(p.key) ? String(p.key.value) : '';
    const field = FIELDS[k];
    if (!field)
      fail(p.key as Node, `unknown update-limits setting "${k}" (known: ${Object.keys(FIELDS).join(', ')})`);
    const v = p.value as Node;
    // A YAML number, or a quoted one; Number() would read an empty value (`rate:`, `""`) or `false`
    // as 0, which for `rate` means no limit at all.
    const n =
      isScalar(v) &&
      (typeof v.value === 'number' || (typeof v.value === 'string' && /^\s*\d+(\.\d+)?\s*$/.test(v.value)))
        ? Number(v.value)
        : Number.NaN;
    if (field === 'rate') {
      if (!Number.isFinite(n) || n < 0 || n > 1_000_000)
        fail(v, 'update-limits.rate is updates per second per key, 0..1000000 (0 = no rate limit)');
    } else if (!Number.isInteger(n) || n < 1 || n > 100_000_000)
      fail(v, `update-limits.${k} must be a whole number 1..100000000`);
    out[field!] = n;
  }
  return out;
}

/**
 * Per-key token buckets (one per TSIG key name): `take` spends one token, refilled at `rate` per
 * second up to `burst`. Keys are few (the keyring's), so the map stays small.
 */
export class UpdateRateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly rate: number,
    private readonly burst: number,
  ) {}

  /** True when `key` may send one more update at `nowMs` (milliseconds); false = over its rate. */
  take(key: string, nowMs: number = Date.now()): boolean {
    if (this.rate <= 0) return true;
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: nowMs };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + (Math.max(0, nowMs - b.at) / 1000) * this.rate);
    b.at = nowMs;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
