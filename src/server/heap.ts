/**
 * Giving the memory of replaced zone versions back after a reload.
 *
 * Why it is needed: a reload builds the new version beside the old one, so the old generation of V8's
 * heap grows to hold both, and V8 sets its next old-generation limit from that size. After the swap the
 * old version is garbage, but the query path allocates only short-lived objects (young generation), so
 * nothing reaches that limit and no major collection runs. V8's memory reducer starts one only when the
 * allocation rate is low at its 8-s timer or, under steady query load, after its ~100-s watchdog
 * (measured in bench/RESULTS.md, issue 15 memory rows). Until then RSS stays at about twice the steady state.
 *
 * Node 20 offers no API for a memory-pressure notification, so the server asks for one full collection
 * itself: with `gc` from `--expose-gc` when the process has it, otherwise by turning that flag on at run
 * time and taking `gc` from a fresh context (the documented `v8.setFlagsFromString` with the flag V8
 * reads when it sets up a context). It is a stop-the-world collection of the live heap (≈ 0.2–0.6 s for
 * a 1M-record zone), so it runs only when a reload replaced or parsed a big zone (RELEASE_MIN_RECORDS).
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** Replaced or parsed records below which a reload leaves the collection to V8. */
export const RELEASE_MIN_RECORDS = 50_000;

let collector: (() => void) | null | undefined;

/** V8's full collection (`gc()`), found or enabled once; null when this runtime refuses it. */
function fullCollector(): (() => void) | null {
  if (collector !== undefined) return collector;
  const exposed = (globalThis as { gc?: unknown }).gc;
  if (typeof exposed === 'function') {
    collector = exposed as () => void;
    return collector;
  }
  try {
    setFlagsFromString('--expose-gc');
    const f = runInNewContext('gc') as unknown;
    collector = typeof f === 'function' ? (f as () => void) : null;
  } catch {
    collector = null;
  }
  return collector;
}

/**
 * Runs one full (mark-compact) collection of the V8 heap, synchronously. Returns how long it took in
 * seconds, or null when no collector is available (the memory then comes back when V8 collects on its
 * own). Pages V8 frees are returned to the OS by its unmapper thread shortly after.
 */
export function collectGarbage(): number | null {
  const gc = fullCollector();
  if (!gc) return null;
  const t0 = performance.now();
  gc();
  return (performance.now() - t0) / 1000;
}
