/**
 * A signing thread of the SignPool (dnssec/signpool.ts). It holds private keys by pool-wide id and
 * signs batches: one buffer of signed data (RFC 4034 §3.1.8.1, built by writeSignedData on the main
 * thread), the end offset of each item and its key id; it answers with the raw signatures (RFC 6605
 * §4, RFC 8080 §4, RFC 5702 §3) packed in one buffer with their end offsets, and hands the batch
 * buffer back. Messages:
 *   in:  { kind: 'key', id, algorithm, der }            (PKCS#8 DER of the private key)
 *        { kind: 'batch', seq, buf, ends, keys }        (buf transferred)
 *   out: { seq, buf, sigs, sigEnds } | { seq, error }
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { type Algorithm, rawSign } from './keys.js';

interface KeyMsg {
  kind: 'key';
  id: number;
  algorithm: Algorithm;
  der: Uint8Array;
}
interface BatchMsg {
  kind: 'batch';
  seq: number;
  buf: ArrayBuffer;
  ends: Uint32Array;
  keys: Uint16Array;
}

const keys = new Map<number, { algorithm: Algorithm; key: KeyObject }>();
/** Test hook (SignPool's `fault` option): fail on the first batch by throwing or exiting. */
const fault = (workerData as { fault?: 'throw' | 'exit' } | null)?.fault;

parentPort?.on('message', (m: KeyMsg | BatchMsg) => {
  if (m.kind === 'key') {
    keys.set(m.id, {
      algorithm: m.algorithm,
      key: createPrivateKey({ key: Buffer.from(m.der), format: 'der', type: 'pkcs8' }),
    });
    return;
  }
  if (fault === 'throw') throw new Error('injected signing-thread fault');
  if (fault === 'exit') process.exit(3);
  const data = Buffer.from(m.buf);
  const n = m.ends.length;
  const sigEnds = new Uint32Array(n);
  const parts: Buffer[] = [];
  let total = 0;
  let start = 0;
  try {
    for (let i = 0; i < n; i++) {
      const k = keys.get(m.keys[i]!);
      if (!k) throw new Error(`no key ${m.keys[i]} in this signing thread`);
      const end = m.ends[i]!;
      const sig = rawSign(k.algorithm, k.key, data.subarray(start, end));
      parts.push(sig);
      total += sig.length;
      sigEnds[i] = total;
      start = end;
    }
  } catch (e) {
    parentPort!.postMessage({ seq: m.seq, error: (e as Error).message });
    return;
  }
  const sigs = Buffer.concat(parts, total);
  // A fresh (unpooled) ArrayBuffer to transfer: Buffer.concat may return a slice of a shared pool.
  const out = new Uint8Array(total);
  out.set(sigs);
  parentPort!.postMessage({ seq: m.seq, buf: m.buf, sigs: out.buffer, sigEnds }, [
    m.buf,
    out.buffer,
    sigEnds.buffer,
  ]);
});
