/** Zone-transfer helpers for tests: a TCP exchange that reads a multi-message response to its end. */
import { connect } from 'node:net';

/**
 * Sends one message over TCP and collects response messages until `done(messages)` says the stream is
 * complete (e.g. the closing SOA of an AXFR), the peer closes, or the timeout passes (rejects).
 */
export function tcpStream(
  port: number,
  msg: Buffer,
  done: (msgs: Buffer[]) => boolean,
  timeoutMs = 10000,
  host = '127.0.0.1',
): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host });
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(out);
    };
    const timer = setTimeout(
      () => finish(new Error(`TCP: ${out.length} messages before timeout`)),
      timeoutMs,
    );
    sock.on('connect', () =>
      sock.write(Buffer.concat([Buffer.from([msg.length >> 8, msg.length & 0xff]), msg])),
    );
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const len = buf.readUInt16BE(0);
        out.push(Buffer.from(buf.subarray(2, 2 + len)));
        buf = buf.subarray(2 + len);
        if (done(out)) return finish();
      }
    });
    sock.on('close', () => finish());
    sock.on('error', (e) => finish(e));
  });
}

/** Number of SOA records in the answer section of a response (counts the AXFR/IXFR framing). */
export function answerSoaCount(msg: Buffer): number {
  const an = msg.readUInt16BE(6);
  let p = 12;
  for (let i = 0; i < msg.readUInt16BE(4); i++) {
    p = skipName(msg, p) + 4;
  }
  let n = 0;
  for (let i = 0; i < an; i++) {
    p = skipName(msg, p);
    if (msg.readUInt16BE(p) === 6) n++;
    p += 10 + msg.readUInt16BE(p + 8);
  }
  return n;
}

function skipName(msg: Buffer, p: number): number {
  for (;;) {
    const l = msg[p]!;
    if (l === 0) return p + 1;
    if ((l & 0xc0) === 0xc0) return p + 2;
    p += l + 1;
  }
}
