/**
 * `--workers N`: N processes answer on the same addresses. Where Node has SO_REUSEPORT for UDP
 * (≥ 22.12), each worker binds its own socket and the kernel spreads queries by flow; on Node 20 the
 * workers share the primary's sockets through node:cluster. The primary loads nothing itself: it
 * starts the workers, sums their counters for /metrics, forwards SIGHUP, and runs the drain on SIGTERM.
 */
import cluster, { type Worker } from 'node:cluster';
import type { MetricsInput } from '../metrics/metrics.js';
import { type CountersSnapshot, sumSnapshots } from './counters.js';
import type { ZoneStatus } from './server.js';

/** True when this Node's dgram sockets accept reusePort (added in 22.12.0 and 23.1.0). */
export function udpReusePortSupported(): boolean {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
  return major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
}

export type WorkerMessage =
  | { kind: 'ready'; lines: string[]; zones: number }
  | { kind: 'failed'; error: string }
  | { kind: 'snapshot'; id: number; data: MetricsInput }
  | { kind: 'reloaded' }
  /** A NOTIFY a worker received, for the primary's secondary side (src/xfr); msg in base64. */
  | { kind: 'notify'; seq: number; msg: string; from: string }
  /** A worker now serves this version of a secondary zone (serial null: SERVFAIL or removed). */
  | { kind: 'secondary-loaded'; zone: string; serial: number | null }
  /** Worker 0: a zone's serial changed and its changeset is on disk (the primary sends NOTIFY). */
  | { kind: 'xfr-serial'; origin: number[]; serial: number; ttl: number; rdata: number[] }
  | { kind: 'ctl'; id: number; out: unknown }
  /** An RFC 2136 UPDATE a worker received, for the one writer (src/server/updateipc.ts); msg in base64. */
  | { kind: 'update'; seq: number; msg: string; peer: string; tcp: boolean }
  /** The writer's answer to `update-apply` (signed response bytes, base64) and the zones it changed. */
  | { kind: 'update-done'; id: number; msg: string | null; changed: UpdatePublish[] }
  /** A worker now serves the versions of `update-publish` `id` (ok false: it could not). */
  | { kind: 'update-applied'; id: number; ok: boolean };

/** A zone version the update writer journalled: serve `serial` (read from the update journal). */
export interface UpdatePublish {
  /** Lower-case origin, trailing dot. */
  origin: string;
  serial: number;
  /** The new SOA's TTL and RDATA (for NOTIFY). */
  ttl: number;
  rdata: number[];
}

export type PrimaryMessage =
  | { kind: 'snapshot'; id: number }
  | { kind: 'reload' }
  | { kind: 'close' }
  /** The answer to a worker's NOTIFY (base64), or null to send nothing. */
  | { kind: 'notify-reply'; seq: number; msg: string | null }
  /** Serve a secondary zone's version from `path` (written by the primary), SERVFAIL, or stop serving it. */
  | {
      kind: 'secondary';
      zone: string;
      state: 'zone' | 'unavailable' | 'removed';
      path: string;
      serial: number;
      /** Why nothing is served (state 'unavailable'), for `/zones`. */
      reason?: string;
    }
  /** A control request (`popdns ctl`), run by the worker; `proc` describes the serving process. */
  | { kind: 'ctl'; id: number; verb: string; args: string[]; proc: unknown }
  /** To the writer: apply this UPDATE (base64) as received by a worker from `peer`. */
  | { kind: 'update-apply'; id: number; msg: string; peer: string; tcp: boolean }
  /** To every other worker: catch up with the update journal to these versions, then answer. */
  | { kind: 'update-publish'; id: number; changed: UpdatePublish[] }
  /** To the receiving worker: the response to send (base64), or null to send nothing. */
  | { kind: 'update-reply'; seq: number; msg: string | null };

/** Bytes free at the top of glibc's heap before it is trimmed, for the workers (see deploy/systemd). */
const MALLOC_TRIM_THRESHOLD = 1024 * 1024;

export class WorkerPool {
  private readonly workers: Worker[] = [];
  private seq = 0;
  /** Receives every message of every worker (the secondary side listens here). */
  onMessage: ((w: Worker, m: WorkerMessage) => void) | null = null;

  /** Forks `n` workers running the same command line; resolves with the first worker's ready lines. */
  async start(n: number): Promise<string[]> {
    const ready: Promise<string[]>[] = [];
    for (let i = 0; i < n; i++) {
      // glibc returns freed memory to the OS (README: Reload) unless the operator chose otherwise.
      const w = cluster.fork({
        POPDNS_WORKER: String(i),
        MALLOC_TRIM_THRESHOLD_: process.env.MALLOC_TRIM_THRESHOLD_ ?? String(MALLOC_TRIM_THRESHOLD),
      });
      this.workers.push(w);
      w.on('message', (m: WorkerMessage) => this.onMessage?.(w, m));
      ready.push(
        new Promise((resolve, reject) => {
          const onExit = (code: number): void =>
            reject(new Error(`worker ${i} exited with ${code} before it was ready`));
          w.once('exit', onExit);
          w.on('message', (m: WorkerMessage) => {
            if (m.kind === 'ready') {
              w.off('exit', onExit);
              resolve(m.lines);
            } else if (m.kind === 'failed') {
              w.off('exit', onExit);
              reject(new Error(m.error));
            }
          });
        }),
      );
    }
    const lines = await Promise.all(ready);
    return lines[0] ?? [];
  }

  private rolling = false;
  private again = false;

  /** True while a rolling reload is going through the workers. */
  get reloading(): boolean {
    return this.rolling;
  }

  /**
   * SIGHUP with several workers: one worker reloads at a time and the next starts when it is done.
   * A reload parses on the worker's main thread; meanwhile the others keep reading the shared
   * sockets, so no query waits for a big zone to load. SIGHUPs during a round are folded into one more.
   */
  reloadRolling(): void {
    if (this.rolling) {
      this.again = true;
      return;
    }
    this.rolling = true;
    void (async () => {
      do {
        this.again = false;
        for (const w of this.workers) {
          if (!w.isConnected()) continue;
          await new Promise<void>((resolve) => {
            const timer = setTimeout(finish, 600_000);
            function finish(): void {
              clearTimeout(timer);
              w.off('message', onMsg);
              w.off('exit', finish);
              resolve();
            }
            const onMsg = (m: WorkerMessage): void => {
              if (m.kind === 'reloaded') finish();
            };
            w.on('message', onMsg);
            w.once('exit', finish);
            w.send({ kind: 'reload' } satisfies PrimaryMessage);
          });
        }
      } while (this.again);
      this.rolling = false;
    })();
  }

  broadcast(m: PrimaryMessage): void {
    for (const w of this.workers) if (w.isConnected()) w.send(m);
  }

  /** Every worker's counters and zone state, summed for one scrape (bounded wait of 2 s). */
  async collect(): Promise<MetricsInput> {
    const id = ++this.seq;
    const parts = await Promise.all(
      this.workers
        .filter((w) => w.isConnected())
        .map(
          (w) =>
            new Promise<MetricsInput | null>((resolve) => {
              const timer = setTimeout(() => resolve(null), 2000);
              const onMsg = (m: WorkerMessage): void => {
                if (m.kind === 'snapshot' && m.id === id) {
                  clearTimeout(timer);
                  w.off('message', onMsg);
                  resolve(m.data);
                }
              };
              w.on('message', onMsg);
              w.send({ kind: 'snapshot', id } satisfies PrimaryMessage);
            }),
        ),
    );
    const ok = parts.filter((p): p is MetricsInput => p !== null);
    const counters: CountersSnapshot = sumSnapshots(ok.map((p) => p.counters));
    const zones: ZoneStatus[] = ok[0]?.zones ?? [];
    const reloads = { success: 0, failure: 0 };
    for (const p of ok) {
      reloads.success = Math.max(reloads.success, p.reloads.success);
      reloads.failure = Math.max(reloads.failure, p.reloads.failure);
    }
    return { counters, zones, reloads };
  }

  /** The workers still connected (to send one of them a message). */
  connected(): Worker[] {
    return this.workers.filter((w) => w.isConnected());
  }

  /** Every worker forked, by index (POPDNS_WORKER), dead ones included. */
  all(): readonly Worker[] {
    return this.workers;
  }

  /** Indexes of the workers that can take a request now. */
  liveWorkers(): number[] {
    return this.workers.flatMap((w, i) => (w.isConnected() ? [i] : []));
  }

  /**
   * Sends a control request to worker `index` and waits for its answer (no time limit: a reload
   * takes as long as it takes). Resolves null if the worker dies first.
   */
  ctl(index: number, verb: string, args: string[], proc: unknown): Promise<unknown> {
    const w = this.workers[index];
    if (!w || !w.isConnected()) return Promise.resolve(null);
    const id = ++this.seq;
    return new Promise((resolve) => {
      const finish = (v: unknown): void => {
        w.off('message', onMsg);
        w.off('exit', onExit);
        resolve(v);
      };
      const onMsg = (m: WorkerMessage): void => {
        if (m.kind === 'ctl' && m.id === id) finish(m.out);
      };
      const onExit = (): void => finish(null);
      w.on('message', onMsg);
      w.once('exit', onExit);
      w.send({ kind: 'ctl', id, verb, args, proc } satisfies PrimaryMessage);
    });
  }

  get alive(): number {
    return this.workers.filter((w) => !w.isDead()).length;
  }

  /** Asks every worker to close, then waits (bounded) for them to exit. */
  async close(): Promise<void> {
    this.broadcast({ kind: 'close' });
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const timer = setTimeout(() => {
              w.kill('SIGKILL');
              resolve();
            }, 3000);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
  }
}
