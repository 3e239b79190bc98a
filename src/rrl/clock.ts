/**
 * A clock the query path can read for free: two numbers refreshed by a timer every TICK_MS, so
 * response rate limiting and cookies cost no clock call per query (a clock read is ~2.5% of a
 * cached UDP answer). Precision is TICK_MS, plenty for per-second rates and cookie timestamps.
 */
import { performance } from 'node:perf_hooks';

const TICK_MS = 20;

export class CoarseClock {
  /** Monotonic milliseconds (performance.now()). */
  ms = performance.now();
  /** Wall-clock Unix seconds (cookie timestamps, RFC 9018 §4.3). */
  unix = Math.floor(Date.now() / 1000);
  private timer: NodeJS.Timeout | null = null;

  /** Starts the refresh timer (unref'd: it never keeps the process alive). Idempotent. */
  start(): this {
    if (this.timer) return this;
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    return this;
  }

  tick(): void {
    this.ms = performance.now();
    this.unix = Math.floor(Date.now() / 1000);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
