/**
 * The server end to end on loopback: EDNS, NSID, truncation, CHAOS, opcodes and classes, TCP framing
 * and timeouts, hostile input, and reload. Every test ends by checking the server still answers.
 */
import { writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import packet from 'dns-packet';
import fc from 'fast-check';
import t, { type Test } from 'tap';
import { defaultConfig, type ServerConfig } from '../../src/server/config.js';
import { parseListen } from '../../src/server/listen.js';
import { type Logger, PopdnsServer } from '../../src/server/server.js';
import { buildQuery, tcpExchange, udpExchange } from '../helpers/dns.js';
import { tmpDir } from '../helpers/peers.js';

const ZONE = `$ORIGIN example.test.
$TTL 300
@     SOA ns1 hostmaster 1 3600 900 604800 60
@     NS  ns1
ns1   A   192.0.2.1
www   A   192.0.2.80
big   TXT "${'x'.repeat(200)}" "${'y'.repeat(200)}"
big   TXT "${'z'.repeat(200)}" "${'w'.repeat(200)}"
${Array.from({ length: 40 }, (_, i) => `many A 192.0.2.${i + 10}`).join('\n')}
deleg NS  ns.deleg
deleg NS  ns2.deleg
ns.deleg  A 192.0.2.53
ns2.deleg A 192.0.2.54
${Array.from({ length: 30 }, (_, i) => `ns.deleg AAAA 2001:db8::${i + 1}`).join('\n')}
`;

interface Running {
  server: PopdnsServer;
  port: number;
  dir: string;
  logs: string[];
}

async function start(tt: Test, tweak: (c: ServerConfig) => void = () => {}): Promise<Running> {
  const dir = tmpDir(tt);
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  const cfg = defaultConfig('test', 1);
  cfg.zones = dir;
  cfg.listen = [parseListen('127.0.0.1:0')];
  cfg.listenDefault = false;
  cfg.identity = 'pop-test-1';
  cfg.nsid = 'pop-test-1';
  tweak(cfg);
  const logs: string[] = [];
  const log: Logger = { info: (m) => logs.push(m), error: (m) => logs.push(m) };
  const server = new PopdnsServer(cfg, log);
  tt.teardown(() => server.close());
  await server.start();
  return { server, port: server.bound[0]!.addr.port, dir, logs };
}

async function stillAnswers(tt: Test, port: number): Promise<void> {
  const u = await udpExchange(port, buildQuery('www.example.test.', 'A'));
  tt.ok(u && packet.decode(u).answers?.[0], 'still answers over UDP');
  const [r] = await tcpExchange(port, [buildQuery('www.example.test.', 'A')]);
  tt.ok(r && packet.decode(r).answers?.[0], 'still answers over TCP');
}

const decode = (b: Buffer | null | undefined): packet.Packet & { rcode?: string } => {
  if (!b) throw new Error('no response');
  return packet.decode(b) as packet.Packet & { rcode?: string };
};
const optOf = (
  p: packet.Packet,
):
  | (packet.Answer & {
      udpPayloadSize?: number;
      flags?: number;
      options?: { code: number; data: Buffer }[];
      extendedRcode?: number;
      ednsVersion?: number;
    })
  | undefined => p.additionals?.find((a) => a.type === 'OPT') as never;

t.test(
  'EDNS (RFC 6891): OPT echoed with our size, DO echoed, BADVERS, unknown options ignored',
  async (tt) => {
    const { port } = await start(tt);
    const r = decode(
      await udpExchange(port, buildQuery('www.example.test.', 'A', { bufsize: 4096, dnssecOk: true })),
    );
    const opt = optOf(r);
    tt.equal(opt?.udpPayloadSize, 1232, 'our UDP size');
    tt.ok(((opt?.flags ?? 0) & packet.DNSSEC_OK) !== 0, 'DO echoed');
    const noEdns = decode(await udpExchange(port, buildQuery('www.example.test.', 'A')));
    tt.notOk(optOf(noEdns), 'no OPT in, no OPT out');
    // EDNS version 1 → BADVERS: extended rcode 1 in the OPT, 0 in the header, version 0.
    const q = buildQuery('www.example.test.', 'A', { bufsize: 1232 });
    q[q.length - 5] = 1; // version byte of the OPT TTL
    const bad = await udpExchange(port, q);
    tt.ok(bad);
    tt.equal(bad!.readUInt16BE(2) & 0xf, 0);
    tt.equal(bad!.readUInt16BE(6), 0, 'no answer');
    const optStart = bad!.length - 11;
    tt.equal(bad![optStart + 5], 1, 'extended rcode 1 (BADVERS = 16)');
    tt.equal(bad![optStart + 6], 0, 'version 0');
    // An unknown option (code 65001) is ignored and not echoed.
    const withOpt = Buffer.concat([
      buildQuery('www.example.test.', 'A', { bufsize: 1232 }).subarray(0, -2),
      Buffer.from([0, 6, 0xfd, 0xe9, 0, 2, 1, 2]),
    ]);
    const u = decode(await udpExchange(port, withOpt));
    tt.equal(u.answers?.length, 1);
    tt.same(optOf(u)?.options ?? [], [], 'nothing echoed');
    await stillAnswers(tt, port);
  },
);

t.test('NSID (RFC 5001) and CHAOS identity (RFC 4892)', async (tt) => {
  const { port } = await start(tt);
  const r = decode(await udpExchange(port, buildQuery('www.example.test.', 'A', { nsid: true })));
  const nsid = optOf(r)?.options?.find((o) => o.code === 3);
  tt.equal(nsid?.data.toString(), 'pop-test-1');
  const noAsk = decode(await udpExchange(port, buildQuery('www.example.test.', 'A', { bufsize: 1232 })));
  tt.notOk(optOf(noAsk)?.options?.length, 'NSID only when asked');
  for (const name of ['id.server.', 'hostname.bind.', 'ID.SERVER.']) {
    const c = decode(await udpExchange(port, buildQuery(name, 'TXT', { klass: 'CH' })));
    tt.equal(c.rcode, 'NOERROR');
    tt.same(
      (c.answers?.[0] as { data: Buffer[] } | undefined)?.data.map((d) => d.toString()),
      ['pop-test-1'],
      name,
    );
    tt.equal((c.answers?.[0] as { class: string } | undefined)?.class, 'CH');
    tt.notOk(((c.flags ?? 0) & packet.AUTHORITATIVE_ANSWER) !== 0, 'AA=0 like Knot and NSD');
  }
  const v = decode(await udpExchange(port, buildQuery('version.bind.', 'TXT', { klass: 'CH' })));
  tt.match((v.answers?.[0] as { data: Buffer[] } | undefined)?.data[0]?.toString(), /^popdns /);
  const other = decode(await udpExchange(port, buildQuery('authors.bind.', 'TXT', { klass: 'CH' })));
  tt.equal(other.rcode, 'REFUSED');
  tt.test('version hidden', async (t2) => {
    const s = await start(t2, (c) => {
      c.version = null;
    });
    const h = decode(await udpExchange(s.port, buildQuery('version.server.', 'TXT', { klass: 'CH' })));
    t2.equal(h.rcode, 'REFUSED');
  });
});

t.test(
  'truncation: 512 without EDNS, client size with it, TC with the question only (like Knot)',
  async (tt) => {
    const { port } = await start(tt);
    const small = await udpExchange(port, buildQuery('many.example.test.', 'A'));
    tt.ok(small!.length <= 512);
    const p = decode(small);
    tt.ok(((p.flags ?? 0) & packet.TRUNCATED_RESPONSE) !== 0, 'TC set');
    tt.equal(p.answers?.length, 0, 'question only');
    tt.equal(p.questions?.length, 1);
    const edns = await udpExchange(port, buildQuery('many.example.test.', 'A', { bufsize: 1232 }));
    const pe = decode(edns);
    tt.notOk(((pe.flags ?? 0) & packet.TRUNCATED_RESPONSE) !== 0, '40 A records fit in 1232');
    tt.equal(pe.answers?.length, 40);
    const big = await udpExchange(port, buildQuery('big.example.test.', 'TXT', { bufsize: 700 }));
    tt.ok(big!.length <= 700, 'never above the client size');
    tt.ok((decode(big).flags ?? 0) & packet.TRUNCATED_RESPONSE);
    const [overTcp] = await tcpExchange(port, [buildQuery('big.example.test.', 'TXT')]);
    tt.equal(decode(overTcp).answers?.length, 2, 'TCP has room');
    // A referral whose in-domain glue does not fit must be truncated (RFC 9471), not sent without it.
    const ref = decode(await udpExchange(port, buildQuery('x.deleg.example.test.', 'A')));
    tt.ok((ref.flags ?? 0) & packet.TRUNCATED_RESPONSE, 'required glue did not fit: TC');
    const refTcp = decode((await tcpExchange(port, [buildQuery('x.deleg.example.test.', 'A')]))[0]);
    tt.equal(refTcp.authorities?.length, 2);
    tt.equal(refTcp.additionals?.length, 32, 'all glue over TCP');
    tt.notOk((refTcp.flags ?? 0) & packet.AUTHORITATIVE_ANSWER, 'referral: AA=0');
  },
);

t.test('opcodes, classes, zone transfers, header rules', async (tt) => {
  const { port } = await start(tt);
  const q = buildQuery('www.example.test.', 'A', { rd: true });
  q.writeUInt16BE(0x0110 | 0x0100, 2); // RD + CD
  const r = await udpExchange(port, q);
  tt.equal(r!.readUInt16BE(2), 0x8510, 'QR AA RD CD, RA never');
  const notify = Buffer.from(q);
  notify.writeUInt16BE(0x2000, 2);
  const n = await udpExchange(port, notify);
  tt.equal(n!.readUInt16BE(2) & 0xf, 4, 'NOTIFY → NOTIMP');
  tt.equal(n!.readUInt16BE(4), 1, 'question echoed');
  const resp = Buffer.from(q);
  resp.writeUInt16BE(0x8000, 2);
  tt.equal(await udpExchange(port, resp, 300), null, 'QR=1 is dropped');
  const hs = buildQuery('www.example.test.', 'A');
  hs.writeUInt16BE(4, hs.length - 2);
  tt.equal(decode(await udpExchange(port, hs)).rcode, 'REFUSED', 'class HS');
  tt.equal(
    decode(await udpExchange(port, buildQuery('example.test.', 'AXFR'))).rcode,
    'REFUSED',
    'AXFR over UDP',
  );
  const [ax] = await tcpExchange(port, [buildQuery('example.test.', 'AXFR')]);
  tt.equal(decode(ax).rcode, 'REFUSED', 'AXFR over TCP');
  tt.equal(
    decode(await udpExchange(port, buildQuery('example.org.', 'A'))).rcode,
    'REFUSED',
    'outside every zone',
  );
  const empty = Buffer.from(q.subarray(0, 12));
  empty.writeUInt16BE(0, 4);
  tt.equal((await udpExchange(port, empty))!.readUInt16BE(2) & 0xf, 1, 'QDCOUNT 0 → FORMERR');
  await stillAnswers(tt, port);
});

function rawTcp(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ port, host: '127.0.0.1' }, () => resolve(s));
    s.on('error', reject);
  });
}

const closed = (s: Socket, ms: number): Promise<boolean> =>
  new Promise((resolve) => {
    if (s.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });

t.test(
  'TCP (RFC 7766): pipelining in order, partial reads, stalls, idle timeout, connection cap',
  async (tt) => {
    const { server, port } = await start(tt, (c) => {
      c.tcp.idleTimeout = 800;
      c.tcp.stallTimeout = 400;
      c.tcp.maxConnections = 5;
    });
    const msgs = Array.from({ length: 50 }, (_, i) =>
      buildQuery(i % 2 ? 'www.example.test.' : 'nx.example.test.', 'A', { id: i }),
    );
    const out = await tcpExchange(port, msgs);
    tt.same(
      out.map((m) => m.readUInt16BE(0)),
      msgs.map((_, i) => i),
      '50 pipelined queries answered in order',
    );
    // One byte at a time (bounded: 40 writes, 5 ms apart).
    const s = await rawTcp(port);
    const framed = Buffer.concat([Buffer.from([0, msgs[1]!.length]), msgs[1]!]);
    const got = new Promise<Buffer>((resolve) => s.once('data', resolve));
    for (const b of framed) {
      s.write(Buffer.from([b]));
      await new Promise((r) => setTimeout(r, 5));
    }
    tt.equal((await got).readUInt16BE(2), 1, 'answer after byte-by-byte writes');
    s.destroy();
    // A length prefix that lies: the message never completes, the connection is closed quickly.
    const liar = await rawTcp(port);
    liar.write(Buffer.from([0x01, 0xf4, 0xab, 0xcd, 0x01]));
    tt.ok(await closed(liar, 2000), 'stalled message closed by the stall timeout');
    // Idle connection closed after the idle timeout.
    const idle = await rawTcp(port);
    tt.ok(await closed(idle, 3000), 'idle connection closed');
    // Cap of 5: a 6th connection closes the oldest idle one.
    const socks = await Promise.all(Array.from({ length: 5 }, () => rawTcp(port)));
    await new Promise((r) => setTimeout(r, 50));
    const sixth = await rawTcp(port);
    tt.ok(await closed(socks[0]!, 1000), 'oldest idle connection closed for the new one');
    tt.equal(server.counters.tcpRefused, 1);
    for (const x of [...socks, sixth]) x.destroy();
    await stillAnswers(tt, port);
  },
);

t.test(
  'TCP: a client that stops reading is closed after the write timeout; others are unaffected',
  async (tt) => {
    const { port, server } = await start(tt, (c) => {
      c.tcp.writeTimeout = 500;
      c.tcp.idleTimeout = 60_000;
    });
    const s = await rawTcp(port);
    s.pause(); // never read: the answers pile up in the kernel buffers, then in the server
    const q = buildQuery('big.example.test.', 'TXT', { id: 1 });
    const frame = Buffer.concat([Buffer.from([q.length >> 8, q.length & 0xff]), q]);
    // 20,000 queries for ~850-byte answers: ~17 MB the client never reads (bounded, one write).
    s.write(Buffer.concat(Array.from({ length: 20_000 }, () => frame)));
    // The client is paused, so it would not notice a close before reading everything: watch the server.
    const t0 = Date.now();
    for (let i = 0; i < 40 && server.tcpConnections < 1; i++) await new Promise((r) => setTimeout(r, 25));
    tt.equal(server.tcpConnections, 1, 'connected');
    while (server.tcpConnections > 0 && Date.now() - t0 < 8000) await new Promise((r) => setTimeout(r, 50));
    tt.equal(server.tcpConnections, 0, `the server closed it after ${Date.now() - t0} ms`);
    s.destroy();
    await stillAnswers(tt, port);
  },
);

t.test('hostile input: nothing crashes, stalls or slows the server', async (tt) => {
  const { port, server } = await start(tt, (c) => {
    c.tcp.stallTimeout = 3000;
  });
  const hexes = [
    '',
    '00',
    'abcd0100',
    'abcd01000001000000000000', // short and truncated headers
    'abcd0100ffff000000000000036177770000010001', // QDCOUNT lies
    'abcd01000001000000000000c00c00010001', // pointer loop in the question
    'abcd01000001000000000000c0ff00010001', // pointer past the end
    `abcd01000001000000000000${'40'}${'61'.repeat(64)}0000010001`, // label too long
    `abcd01000001000000000001037777770000010001${'0000290200000000ffff'}`, // OPT rdlen lies
    `abcd0100000100000000000103777777000001000100002902000000000004000300`, // option cut short
    'abcd0100000100010000000003777777000001000100', // ANCOUNT with half a record
  ];
  for (const h of hexes) {
    const r = await udpExchange(port, Buffer.from(h, 'hex'), 300);
    if (r) tt.ok(r.length >= 12 && (r.readUInt16BE(2) & 0xf) === 1, `${h.slice(0, 24)}… → FORMERR`);
    else tt.ok(h.length < 24, `${h.slice(0, 24)}… dropped (no readable header)`);
  }
  // 500 random packets and 500 mutated queries over UDP (fire and forget), then check health.
  const base = buildQuery('www.example.test.', 'A', { bufsize: 1232 });
  const randoms = fc.sample(fc.uint8Array({ maxLength: 300 }), 500);
  const mutated = fc
    .sample(fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(255)), { maxLength: 6 }), 500)
    .map((muts) => {
      const b = Buffer.from(base);
      for (const [i, v] of muts) b[i] = v;
      return b;
    });
  await Promise.all([...randoms, ...mutated].map((b) => udpExchange(port, Buffer.from(b), 200)));
  // One byte per second on TCP, while another client is answered at once.
  const slow = await rawTcp(port);
  slow.write(Buffer.from([0]));
  const t0 = Date.now();
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    if (!slow.destroyed) slow.write(Buffer.from([0x20]));
    const [fast] = await tcpExchange(port, [buildQuery('www.example.test.', 'A')], 500);
    tt.ok(fast, `another client answered at once while the slow one trickles (${i + 1}s)`);
  }
  tt.ok(Date.now() - t0 < 6000);
  slow.destroy();
  // Hundreds of idle connections.
  const idle = await Promise.all(Array.from({ length: 300 }, () => rawTcp(port)));
  for (let i = 0; i < 40 && server.tcpConnections < 300; i++) await new Promise((r) => setTimeout(r, 50));
  tt.ok(server.tcpConnections >= 300, `${server.tcpConnections} connections open`);
  await stillAnswers(tt, port);
  for (const s of idle) s.destroy();
});

t.test('reload: new data, broken zone keeps serving, deleted zone removed, no query lost', async (tt) => {
  const { server, port, dir, logs } = await start(tt);
  const file = join(dir, 'example.test.zone');
  const second = join(dir, 'other.test.zone');
  writeFileSync(second, '$ORIGIN other.test.\n$TTL 60\n@ SOA ns hm 1 1 1 1 1\n@ NS ns\nns A 192.0.2.9\n');
  // Queries keep flowing during reloads: a bounded loop, every one must be answered.
  let answered = 0;
  let lost = 0;
  let stop = false;
  const pump = (async () => {
    for (let i = 0; i < 3000 && !stop; i++) {
      // The server runs in this process: a synchronous reload holds the event loop, and when it lets
      // go the client's timer may fire before the answer waiting in the socket is read. A generous
      // timeout keeps that from counting as a loss; a query the server really dropped still does.
      const r = await udpExchange(port, buildQuery('www.example.test.', 'A'), 10000);
      if (r) answered++;
      else lost++;
    }
  })();
  writeFileSync(
    file,
    ZONE.replace('1 3600 900', '2 3600 900').replace('www   A   192.0.2.80', 'www   A   192.0.2.81'),
  );
  server.reload();
  const a = decode(await udpExchange(port, buildQuery('www.example.test.', 'A')));
  tt.equal((a.answers?.[0] as { data: string } | undefined)?.data, '192.0.2.81', 'new data after reload');
  tt.equal(
    decode(await udpExchange(port, buildQuery('ns.other.test.', 'A'))).rcode,
    'NOERROR',
    'new zone file added',
  );
  writeFileSync(file, `${ZONE}\nbroken A 192.0.2.999\n`);
  const r = server.reload();
  tt.equal(r.failed, 1);
  tt.ok(
    logs.some((l) => /example\.test\.zone:\d+:\d+: error: .*192\.0\.2\.999/.test(l)),
    'error logged with file:line:col',
  );
  const b = decode(await udpExchange(port, buildQuery('www.example.test.', 'A')));
  tt.equal(
    (b.answers?.[0] as { data: string } | undefined)?.data,
    '192.0.2.81',
    'previous version still served',
  );
  for (let i = 0; i < 20; i++) server.reload();
  const { unlinkSync } = await import('node:fs');
  unlinkSync(second);
  server.reload();
  tt.equal(
    decode(await udpExchange(port, buildQuery('ns.other.test.', 'A'))).rcode,
    'REFUSED',
    'deleted zone removed',
  );
  stop = true;
  await pump;
  tt.equal(lost, 0, `${answered} queries during reloads, none lost`);
});
