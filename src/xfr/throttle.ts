/**
 * A log throttle for refusals anyone can trigger (a NOTIFY or transfer request, spoofable over UDP):
 * the first line per key in each interval is logged, the rest are counted and summed into the next
 * line. Callers key by something bounded (a reason, a zone they serve), never by a peer's address or
 * a name from the request, so the set of keys cannot grow with a flood.
 */
export class LogThrottle {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();

  /** @param intervalMs at most one line per key per this many milliseconds (default one minute) */
  constructor(private readonly intervalMs = 60_000) {}

  /**
   * The line to log for `key` now — `msg`, with `(N more like it since)` when lines were held back —
   * or null when one was logged less than the interval ago.
   */
  line(key: string, msg: string, now = Date.now()): string | null {
    const r = this.seen.get(key);
    if (r && now - r.at < this.intervalMs) {
      r.suppressed++;
      return null;
    }
    if (this.seen.size >= 10_000) this.seen.clear();
    this.seen.set(key, { at: now, suppressed: 0 });
    return r && r.suppressed > 0 ? `${msg} (${r.suppressed} more like it since the last such line)` : msg;
  }
}
