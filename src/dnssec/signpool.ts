/**
 * A pool of signing threads (node:worker_threads, dnssec/signworker.ts) for signing a whole zone on
 * every core: the main thread builds the signed data of many RRsets into one batch buffer
 * (writeSignedData), a thread signs the batch and sends the signatures back. Memory stays bounded:
 * the caller keeps at most `maxInFlight` batches out (each at most BATCH_BYTES of signed data), and
 * buffers are transferred, not copied. Threads start when first needed, keep their keys (sent once
 * as PKCS#8 DER), and do not keep the process alive while idle. A thread that throws or exits fails
 * the batches it holds with DnssecError [POPDNS_E_SIGN] and is replaced on the next batch.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { type DnssecKey, DnssecError } from './keys.js';

/** Signed data per batch before it goes out (octets). */
export const BATCH_BYTES = 256 * 1024;

/** What a batch brings back: the batch buffer (returned) and the raw signatures with their end offsets. */
export interface BatchResult {
  buf: Buffer;
  sigs: Buffer;
  sigEnds: Uint32Array;
}

interface Thread {
  worker: Worker;
  /** Pool key ids this thread has been sent. */
  known: Set<number>;
  inFlight: Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>;
  dead: boolean;
}

interface Reply {
  seq: number;
  error?: string;
  buf?: ArrayBuffer;
  sigs?: ArrayBuffer;
  sigEnds?: Uint32Array;
}

/**
 * The thread's script: the compiled one beside this file; run from the sources (tests), the build's
 * copy when there is one (a TypeScript loader in every thread costs seconds), else the source.
 */
function workerScript(): { url: URL; js: boolean } {
  if (!import.meta.url.endsWith('.ts')) return { url: new URL('./signworker.js', import.meta.url), js: true };
  const built = new URL('../../dist/dnssec/signworker.js', import.meta.url);
  if (existsSync(built)) return { url: built, js: true };
  return { url: new URL('./signworker.ts', import.meta.url), js: false };
}

/** The default number of signing threads: the cores Node may use. */
export function defaultSigningThreads(): number {
  return Math.max(1, availableParallelism());
}

export class SignPool {
  /** Number of threads. */
  readonly size: number;
  private readonly threads: (Thread | null)[];
  private readonly keyIds = new WeakMap<DnssecKey, number>();
  private nextKeyId = 1;
  private seq = 0;
  private closed = false;
  private readonly fault: 'throw' | 'exit' | undefined;

  /**
   * `size` threads (default: the cores). `fault` is a test hook: every thread fails on its first
   * batch (throws, or exits with code 3).
   */
  constructor(size = defaultSigningThreads(), opts: { fault?: 'throw' | 'exit' } = {}) {
    if (!Number.isInteger(size) || size < 1) {
      throw new DnssecError('POPDNS_E_SIGN', `signing threads must be a whole number ≥ 1, not ${size}`);
    }
    this.size = size;
    this.threads = new Array<Thread | null>(size).fill(null);
    this.fault = opts.fault;
  }

  /** Batches the caller may keep out at once: two per thread, so none waits idle. */
  get maxInFlight(): number {
    return this.size * 2;
  }

  /**
   * Signs a batch: item i is `buf[ends[i-1] .. ends[i]]` (from 0 for the first), signed with
   * `keys[i]`. `buf` is handed over (detached here; the result brings it back). Rejects with
   * DnssecError [POPDNS_E_SIGN] when the thread fails or the pool is closed.
   */
  sign(buf: Buffer, ends: Uint32Array, keys: readonly DnssecKey[]): Promise<BatchResult> {
    if (this.closed) return Promise.reject(new DnssecError('POPDNS_E_SIGN', 'the signing pool is closed'));
    const t = this.pick();
    const ids = new Uint16Array(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      let id = this.keyIds.get(k);
      if (id === undefined) {
        id = this.nextKeyId++;
        this.keyIds.set(k, id);
      }
      if (!t.known.has(id)) {
        const der = k.privateKey.export({ format: 'der', type: 'pkcs8' });
        t.worker.postMessage({ kind: 'key', id, algorithm: k.algorithm, der });
        t.known.add(id);
      }
      ids[i] = id;
    }
    // A batch buffer of its own (not a slice of Node's shared pool), so it can be transferred.
    const own =
      buf.byteOffset === 0 && buf.buffer.byteLength === buf.length && buf.buffer instanceof ArrayBuffer
        ? buf.buffer
        : new Uint8Array(buf).buffer;
    const seq = ++this.seq;
    return new Promise<BatchResult>((resolve, reject) => {
      t.inFlight.set(seq, { resolve, reject });
      if (t.inFlight.size === 1) t.worker.ref();
      t.worker.postMessage({ kind: 'batch', seq, buf: own, ends, keys: ids }, [own]);
    });
  }

  /** Stops every thread; batches out are failed. */
  async close(): Promise<void> {
    this.closed = true;
    const all = this.threads.filter((t): t is Thread => t !== null);
    this.threads.fill(null);
    for (const t of all) this.fail(t, 'the signing pool was closed');
    await Promise.all(all.map((t) => t.worker.terminate()));
  }

  /** The live thread with the fewest batches out, starting one where a slot is empty. */
  private pick(): Thread {
    let best: Thread | null = null;
    for (let i = 0; i < this.threads.length; i++) {
      let t = this.threads[i];
      if (!t || t.dead) {
        t = this.start();
        this.threads[i] = t;
      }
      if (best === null || t.inFlight.size < best.inFlight.size) best = t;
    }
    return best!;
  }

  private start(): Thread {
    const script = workerScript();
    const worker = new Worker(script.url, {
      workerData: { fault: this.fault },
      // A plain-JS thread needs none of the parent's loaders (--import of a TypeScript hook, say).
      ...(script.js ? { execArgv: [] } : {}),
      stdout: false,
      stderr: false,
    });
    const t: Thread = { worker, known: new Set(), inFlight: new Map(), dead: false };
    worker.unref();
    worker.on('message', (m: Reply) => {
      const p = t.inFlight.get(m.seq);
      if (!p) return;
      t.inFlight.delete(m.seq);
      if (t.inFlight.size === 0) worker.unref();
      if (m.error !== undefined || !m.buf || !m.sigs || !m.sigEnds) {
        p.reject(new DnssecError('POPDNS_E_SIGN', `a signing thread failed: ${m.error ?? 'bad reply'}`));
      } else p.resolve({ buf: Buffer.from(m.buf), sigs: Buffer.from(m.sigs), sigEnds: m.sigEnds });
    });
    worker.on('error', (e: Error) => this.fail(t, `a signing thread failed: ${e.message}`));
    worker.on('exit', (code) => this.fail(t, `a signing thread exited (code ${code})`));
    return t;
  }

  private fail(t: Thread, why: string): void {
    t.dead = true;
    const pending = [...t.inFlight.values()];
    t.inFlight.clear();
    t.worker.unref();
    for (const p of pending) p.reject(new DnssecError('POPDNS_E_SIGN', why));
  }
}
