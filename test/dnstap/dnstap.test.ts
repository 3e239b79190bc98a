/**
 * dnstap without the Debian tools: the `dnstap:` config section, Frame Streams control frames, the
 * protobuf encoding (decoded back with protobufjs against the same dnstap.proto field numbers), the
 * handshake with an in-process collector, and the bounds: an absent collector or one that stops
 * reading never grows the queue past QUEUE_MAX and every message beyond it is counted as dropped.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { DNSTAP_MESSAGES } from '../../src/dnstap/config.js';
import {
  CONTENT_TYPE,
  Dnstap,
  DNSTAP_DROPPED,
  DNSTAP_SENT,
  DnstapType,
  QUEUE_MAX,
  WRITE_HIGH_WATER,
} from '../../src/dnstap/dnstap.js';
import { controlFrame, FSTRM, readControlFrames } from '../../src/dnstap/framestream.js';
import { defaultConfig, loadConfigFile, parseConfig } from '../../src/server/config.js';
import { buildQuery } from '../helpers/dns.js';
import { tmpDir } from '../helpers/peers.js';

const quiet = { info: (): void => {}, error: (): void => {} };
const until = async (ok: () => boolean, ms = 5000): Promise<boolean> => {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  return ok();
};

t.test("config: the issue's dnstap section, defaults and errors with line:col", (tt) => {
  const base = defaultConfig('t', 1);
  tt.equal(base.dnstap, null, 'off by default');
  const c = parseConfig(
    'dnstap: { socket: /run/dnstap.sock, messages: [auth-query, auth-response], sample: 1 }\n',
    'x.yaml',
    base,
  );
  tt.same(c.dnstap, { socket: '/run/dnstap.sock', queries: true, responses: true, sample: 1 });
  tt.same(
    parseConfig('dnstap:\n  socket: /s\n  messages: [auth-response]\n  sample: 100\n', 'x', base).dnstap,
    {
      socket: '/s',
      queries: false,
      responses: true,
      sample: 100,
    },
  );
  tt.same(parseConfig('dnstap: { socket: /s }\n', 'x', base).dnstap?.sample, 1, 'sample defaults to 1');
  tt.equal(parseConfig('dnstap: false\n', 'x', base).dnstap, null, 'false = off');
  const deploy = loadConfigFile('deploy/popdns.yaml', defaultConfig('t', 2));
  tt.same(
    deploy.dnstap,
    { socket: '/run/dnstap.sock', queries: true, responses: true, sample: 1 },
    'deploy/popdns.yaml: the documented dnstap',
  );
  tt.same([...DNSTAP_MESSAGES], ['auth-query', 'auth-response']);
  const bad = (text: string, re: RegExp): void => {
    tt.throws(() => parseConfig(text, 'x.yaml', base), { message: re });
  };
  bad('dnstap:\n  sample: 1\n', /x\.yaml:2:3: error: dnstap needs a socket.*POPDNS_E_CONFIG/);
  bad('dnstap:\n  socket: /s\n  sample: 0\n', /x\.yaml:3:11: error: dnstap\.sample must be a whole number/);
  bad(
    'dnstap:\n  socket: /s\n  messages: [client-query]\n',
    /x\.yaml:3:14: error: unknown dnstap message "client-query"/,
  );
  bad('dnstap:\n  socket: /s\n  messages: []\n', /dnstap\.messages must be a non-empty list/);
  bad('dnstap:\n  socket: /s\n  identity: x\n', /unknown dnstap setting "identity"/);
  bad('dnstap: /run/dnstap.sock\n', /dnstap must be a mapping/);
  tt.end();
});

t.test('Frame Streams control frames (fstrm "Control frames"): layout and parsing', (tt) => {
  const ready = controlFrame(FSTRM.READY, [CONTENT_TYPE]);
  // escape 0, length, type READY (4), field CONTENT_TYPE (1), its length, the bytes
  tt.same([...ready.subarray(0, 20)], [0, 0, 0, 0, 0, 0, 0, 34, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 22]);
  tt.equal(ready.subarray(20).toString(), 'protobuf:dnstap.Dnstap');
  const stop = controlFrame(FSTRM.STOP);
  tt.same([...stop], [0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3]);
  const two = Buffer.concat([controlFrame(FSTRM.ACCEPT, [CONTENT_TYPE, 'x']), controlFrame(FSTRM.FINISH)]);
  const r = readControlFrames(two);
  tt.same(r.frames, [
    { type: FSTRM.ACCEPT, contentTypes: [CONTENT_TYPE, 'x'] },
    { type: FSTRM.FINISH, contentTypes: [] },
  ]);
  tt.equal(r.used, two.length);
  const partial = readControlFrames(two.subarray(0, 10));
  tt.same(partial, { frames: [], used: 0 }, 'a partial frame waits for more bytes');
  tt.throws(() => readControlFrames(Buffer.from([0, 0, 0, 5, 1, 2, 3, 4, 5])), /data frame/);
  tt.throws(() => readControlFrames(Buffer.from([0, 0, 0, 0, 0, 1, 0, 0])), /control frame of/);
  tt.end();
});

/**
 * A minimal bidirectional Frame Streams reader: answers READY with ACCEPT and STOP with FINISH,
 * collects data frames. `read: false` stops reading after the handshake (a stuck collector).
 */
function collector(
  path: string,
  read = true,
): Promise<{ server: Server; frames: Buffer[]; events: string[] }> {
  const frames: Buffer[] = [];
  const events: string[] = [];
  const conns = new Set<Socket>();
  const server = createServer((s: Socket) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    let buf = Buffer.alloc(0);
    let started = false;
    s.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      for (;;) {
        if (buf.length < 4) return;
        const len = buf.readUInt32BE(0);
        if (len !== 0) {
          if (buf.length < 4 + len) return;
          frames.push(Buffer.from(buf.subarray(4, 4 + len)));
          buf = buf.subarray(4 + len);
          continue;
        }
        if (buf.length < 8 || buf.length < 8 + buf.readUInt32BE(4)) return;
        const clen = buf.readUInt32BE(4);
        const { frames: c } = readControlFrames(buf.subarray(0, 8 + clen));
        buf = buf.subarray(8 + clen);
        const type = c[0]!.type;
        events.push(String(type));
        if (type === FSTRM.READY) s.write(controlFrame(FSTRM.ACCEPT, [CONTENT_TYPE]));
        if (type === FSTRM.START) {
          started = true;
          if (!read) s.pause();
        }
        if (type === FSTRM.STOP && started) s.end(controlFrame(FSTRM.FINISH));
      }
    });
    s.on('error', () => {});
  });
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void): Server => {
    for (const c of conns) c.destroy();
    return close(cb);
  };
  return new Promise((resolve) => server.listen(path, () => resolve({ server, frames, events })));
}

t.test('handshake, encoding and STOP/FINISH with a collector', async (tt) => {
  const dir = tmpDir(tt);
  const path = join(dir, 'tap.sock');
  const col = await collector(path);
  tt.teardown(() => col.server.close());
  const counters = new Float64Array(2);
  const tap = new Dnstap(
    { socket: path, queries: true, responses: true, sample: 1 },
    { identity: 'pop1', version: 'popdns t' },
    counters,
    quiet,
  );
  tap.start();
  tt.ok(await until(() => tap.connected), 'READY → ACCEPT → START');
  const q = buildQuery('www.example.com', 'A');
  const resp = Buffer.from(q);
  resp[2]! |= 0x80;
  tap.udp(q, resp, '192.0.2.7', 40000, '198.51.100.53', 53);
  tap.udp(q, null, '2001:db8::7', 40001, '::', 53);
  tt.ok(await until(() => col.frames.length === 3), 'two AQ and one AR (no response: no AR)');
  await tap.stop();
  tt.same(col.events, [String(FSTRM.READY), String(FSTRM.START), String(FSTRM.STOP)]);
  tt.same([...counters], [3, 0]);
  const msgs = col.frames.map((f) =>
    DnstapType.toObject(DnstapType.decode(f), { bytes: Array, longs: Number }),
  );
  const m0 = msgs[0]! as {
    identity: number[];
    version: number[];
    type: number;
    message: Record<string, unknown>;
  };
  tt.equal(Buffer.from(m0.identity).toString(), 'pop1');
  tt.equal(Buffer.from(m0.version).toString(), 'popdns t');
  tt.equal(m0.type, 1, 'Dnstap.Type MESSAGE');
  tt.match(m0.message, {
    type: 1, // AUTH_QUERY
    socketFamily: 1, // INET
    socketProtocol: 1, // UDP
    queryAddress: [192, 0, 2, 7],
    queryPort: 40000,
    responseAddress: [198, 51, 100, 53],
    responsePort: 53,
  });
  tt.same(m0.message.queryMessage, [...q]);
  tt.notOk('responseMessage' in m0.message);
  const m1 = (msgs[1] as { message: Record<string, unknown> }).message;
  tt.match(m1, { type: 2, queryPort: 40000 }); // AUTH_RESPONSE
  tt.same(m1.responseMessage, [...resp]);
  tt.equal(m1.responseTimeSec, m1.queryTimeSec);
  const m2 = (msgs[2] as { message: Record<string, unknown> }).message;
  tt.match(m2, { type: 1, socketFamily: 2, queryPort: 40001 });
  tt.equal((m2.queryAddress as number[]).length, 16);
  tt.notOk('responseAddress' in m2, 'a wildcard listener has no response address');
});

t.test('sampling: 1 in N queries', async (tt) => {
  const counters = new Float64Array(2);
  const tap = new Dnstap(
    { socket: join(tmpDir(tt), 'absent.sock'), queries: true, responses: false, sample: 100 },
    { identity: 'p', version: 'v' },
    counters,
    quiet,
  );
  const q = buildQuery('example.com', 'SOA');
  for (let i = 0; i < 1000; i++) tap.udp(q, q, '127.0.0.1', 1, '127.0.0.1', 53);
  tt.equal(tap.queued, 10);
  await tap.stop();
  tt.same([...counters], [0, 10], 'never connected: the queued ones count as dropped at stop');
});

t.test('absent collector: bounded queue, drops counted, reconnects when it appears', async (tt) => {
  const path = join(tmpDir(tt), 'tap.sock');
  const counters = new Float64Array(2);
  const errors: string[] = [];
  const tap = new Dnstap(
    { socket: path, queries: true, responses: true, sample: 1 },
    { identity: 'p', version: 'v' },
    counters,
    { info: () => {}, error: (m) => errors.push(m) },
  );
  tap.start();
  const q = buildQuery('example.com', 'SOA');
  for (let i = 0; i < QUEUE_MAX + 100; i++) tap.udp(q, q, '127.0.0.1', 1, '127.0.0.1', 53);
  tt.equal(tap.queued, QUEUE_MAX, 'the queue stops at its bound');
  tt.same([...counters], [0, 200], 'two messages per query beyond it are dropped');
  tt.ok(await until(() => errors.length > 0));
  tt.match(errors[0], /dnstap: collector .*tap\.sock.*POPDNS_W_DNSTAP/);
  const col = await collector(path);
  tt.teardown(() => col.server.close());
  tt.ok(await until(() => tap.connected, 8000), 'connects once the collector is there (back-off)');
  tt.ok(await until(() => col.frames.length === 2 * QUEUE_MAX), 'the queue drains into it');
  await tap.stop();
  tt.same([...counters], [2 * QUEUE_MAX, 200]);
  tt.equal(errors.length, 1, 'one warning, not one per retry');
});

t.test('a collector that stops reading: memory stays bounded, queries are never held', async (tt) => {
  const path = join(tmpDir(tt), 'tap.sock');
  const col = await collector(path, false);
  tt.teardown(() => col.server.close());
  const counters = new Float64Array(2);
  const tap = new Dnstap(
    { socket: path, queries: true, responses: true, sample: 1 },
    { identity: 'p', version: 'v' },
    counters,
    quiet,
  );
  tap.start();
  tt.ok(await until(() => tap.connected));
  const q = Buffer.alloc(500, 1);
  const total = 20 * QUEUE_MAX;
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < QUEUE_MAX; i++) tap.udp(q, q, '127.0.0.1', 1, '127.0.0.1', 53);
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setTimeout(r, 5));
  }
  tt.ok(tap.queued <= QUEUE_MAX);
  tt.ok(counters[DNSTAP_DROPPED]! > 0, 'drops counted');
  // What went into the socket is bounded by the high-water mark (plus one batch), not by the load.
  tt.ok(
    counters[DNSTAP_SENT]! * 500 < 4 * WRITE_HIGH_WATER + 8 * 1024 * 1024,
    `sent ${counters[DNSTAP_SENT]}`,
  );
  tt.equal(
    counters[DNSTAP_SENT]! + counters[DNSTAP_DROPPED]! + 2 * tap.queued,
    2 * total,
    'every message accounted',
  );
  await tap.stop();
});
