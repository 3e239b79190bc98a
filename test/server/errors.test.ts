/**
 * Error responses and meta/reserved question types, through the packet handler. Expected values from
 * RFC 6891 §7 (a response to a query with a valid OPT carries an OPT, also for errors), RFC 1035
 * §4.1.1 (the question is echoed when it could be read), RFC 6895 §3.1 (RRTYPE 0 reserved; OPT, TSIG,
 * TKEY and the 128–255 range are meta/query types: never data in a zone), and Knot's answers to the
 * same queries (test/diff/ has them in its corpus too).
 */
import packet from 'dns-packet';
import t from 'tap';
import { Counters } from '../../src/server/counters.js';
import { Handler } from '../../src/server/handler.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone, type Zone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';
import { buildQuery } from '../helpers/dns.js';

const ZONE = `$ORIGIN example.com.
$TTL 600
@ SOA ns1.example.net. hostmaster.example.com. 1 900 180 1209600 180
@ NS ns1.example.net.
www A 192.0.2.1
`;

function handler(): Handler {
  const built = buildZone(
    parseMasterFile(ZONE, { file: 'example.com.zone', origin: nameFromText('example.com.') }),
  );
  return new Handler(
    { identity: 'test', nsid: null, version: null, ednsUdpSize: 1232 },
    new ZoneSet([built.zone as Zone]),
    new Counters(),
  );
}

interface Seen {
  rcode: number;
  aa: boolean;
  qd: number;
  an: number;
  ns: number;
  /** The OPT's DO bit, or null when the response has no OPT. */
  optDo: boolean | null;
  question: Buffer;
}

/** Reads a response by hand (dns-packet cannot be trusted with every odd question). */
function read(r: Buffer | null, qEnd: number): Seen {
  if (!r) throw new Error('no response');
  const ar = r.readUInt16BE(10);
  let optDo: boolean | null = null;
  if (ar > 0) {
    // The OPT is the last record: root owner, type 41, class, TTL (ext-rcode, version, DO|Z), RDLENGTH 0.
    const o = r.length - 11;
    if (r[o] === 0 && r.readUInt16BE(o + 1) === 41) optDo = (r[o + 7]! & 0x80) !== 0;
  }
  return {
    rcode: r.readUInt16BE(2) & 0xf,
    aa: (r.readUInt16BE(2) & 0x0400) !== 0,
    qd: r.readUInt16BE(4),
    an: r.readUInt16BE(6),
    ns: r.readUInt16BE(8),
    optDo,
    question: r.subarray(12, qEnd),
  };
}

const qEndOf = (q: Buffer): number => {
  let p = 12;
  while (q[p] !== 0) p += q[p]! + 1;
  return p + 5;
};

t.test('error responses echo the question and carry the OPT (RFC 6891 §7)', async (t) => {
  const h = handler();
  const q = buildQuery('www.example.com.', 'A', { dnssecOk: true, bufsize: 1232 });
  const qEnd = qEndOf(q);

  const notify = Buffer.from(q);
  notify.writeUInt16BE(0x2000, 2);
  let r = read(h.handle(notify, false), qEnd);
  t.match(r, { rcode: 4, qd: 1, optDo: true }, 'NOTIFY: NOTIMP with question and OPT (DO echoed)');
  t.same(r.question, q.subarray(12, qEnd));

  // A QUERY with a record in the answer section: FORMERR, question and OPT kept.
  const withAnswer = Buffer.concat([
    q.subarray(0, qEnd),
    Buffer.from('c00c00010001000002580004c0000201', 'hex'),
    q.subarray(qEnd),
  ]);
  withAnswer.writeUInt16BE(1, 6);
  r = read(h.handle(withAnswer, false), qEnd);
  t.match(r, { rcode: 1, qd: 1, an: 0, optDo: true }, 'ANCOUNT 1: FORMERR with question and OPT');
  t.same(r.question, q.subarray(12, qEnd));

  // No question: FORMERR without one, OPT still there.
  const noQ = Buffer.concat([q.subarray(0, 12), q.subarray(qEnd)]);
  noQ.writeUInt16BE(0, 4);
  r = read(h.handle(noQ, false), 12);
  t.match(r, { rcode: 1, qd: 0, optDo: true }, 'QDCOUNT 0: FORMERR, OPT kept');

  // Two OPTs: FORMERR; neither is valid, so none comes back (RFC 6891 §6.1.1).
  const twoOpt = Buffer.concat([q, q.subarray(qEnd)]);
  twoOpt.writeUInt16BE(2, 10);
  r = read(h.handle(twoOpt, false), qEnd);
  t.match(r, { rcode: 1, qd: 1, optDo: null }, 'two OPTs: FORMERR with the question, no OPT');

  // Without EDNS, errors carry no OPT.
  const plain = buildQuery('www.example.com.', 'A');
  plain.writeUInt16BE(0x2800, 2); // UPDATE
  r = read(h.handle(plain, false), qEndOf(plain));
  t.match(r, { rcode: 4, qd: 1, optDo: null }, 'UPDATE without EDNS: NOTIMP, no OPT');
});

t.test('meta and reserved question types (RFC 6895 §3.1)', async (t) => {
  const h = handler();
  for (const type of ['OPT', 'TYPE250', 'TYPE249', 'TYPE128', 'TYPE253', 'TYPE254', 'TYPE65535']) {
    const q = buildQuery('www.example.com.', type, { bufsize: 1232 });
    const r = read(h.handle(q, false), qEndOf(q));
    t.match(
      r,
      { rcode: 0, aa: true, qd: 1, an: 0, ns: 1, optDo: false },
      `${type} (TSIG = 250, TKEY = 249): NOERROR, no data (SOA in authority), like Knot: no zone holds such a record`,
    );
  }
  for (const name of ['www.example.com.', 'example.org.']) {
    const q = buildQuery(name, 'TYPE0', { bufsize: 1232 });
    const r = read(h.handle(q, false), qEndOf(q));
    t.match(r, { rcode: 4, aa: false, qd: 1, an: 0, ns: 0, optDo: false }, `TYPE0 ${name}: NOTIMP`);
    t.same(r.question, q.subarray(12, qEndOf(q)), 'question echoed');
    const again = read(h.handle(q, true), qEndOf(q));
    t.equal(again.rcode, 4, 'the same from the answer cache, over TCP');
  }
  // dns-packet agrees on the shape of one of them.
  const q = buildQuery('www.example.com.', 'OPT', { bufsize: 1232 });
  const d = packet.decode(h.handle(q, false)!);
  t.equal(d.authorities?.[0]?.type, 'SOA');
  t.equal(d.additionals?.[0]?.type, 'OPT');
});
