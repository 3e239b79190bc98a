/** The query reader and response writer, with literal bytes (RFC 1035 §4, RFC 6891 §6). */
import fc from 'fast-check';
import t from 'tap';
import { MessageWriter, PARSE, parseQuery, QueryInfo, responseFlags } from '../../src/wire/message.js';
import { nameFromText } from '../../src/wire/name.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
// ID 0xabcd, RD, QD=1, AR=1 | www.example.com A IN | OPT udp 4096, DO, NSID option
const QUERY = hex(`abcd 0100 0001 0000 0000 0001
  03 777777 07 6578616d706c65 03 636f6d 00 0001 0001
  00 0029 1000 00 00 8000 0004 0003 0000`);

t.test('parseQuery reads header, question and OPT by offset', (tt) => {
  const q = new QueryInfo();
  tt.equal(parseQuery(QUERY, q), PARSE.OK);
  tt.equal(q.id, 0xabcd);
  tt.equal(q.qnameEnd, 12 + 17);
  tt.equal(q.questionEnd, 12 + 17 + 4);
  tt.equal(q.qtype, 1);
  tt.equal(q.qclass, 1);
  tt.ok(q.hasEdns);
  tt.equal(q.ednsUdpSize, 4096);
  tt.ok(q.dnssecOk);
  tt.ok(q.nsidRequested);
  const q2 = new QueryInfo();
  const upper = Buffer.from(QUERY);
  upper.write('WWW', 13, 'latin1');
  parseQuery(upper, q2);
  tt.equal(q2.qhash, q.qhash, 'the name hash ignores letter case');
  tt.end();
});

t.test('parseQuery: drop, FORMERR and NOTIMP cases', (tt) => {
  const q = new QueryInfo();
  const mod = (f: (b: Buffer) => void, base: Buffer = QUERY): Buffer => {
    const b = Buffer.from(base);
    f(b);
    return b;
  };
  tt.equal(parseQuery(QUERY.subarray(0, 11), q), PARSE.DROP, 'shorter than a header');
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(0x8100, 2)),
      q,
    ),
    PARSE.DROP,
    'QR=1 (a response)',
  );
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(0, 4)),
      q,
    ),
    PARSE.FORMERR,
    'QDCOUNT 0',
  );
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(2, 4)),
      q,
    ),
    PARSE.FORMERR,
    'QDCOUNT 2',
  );
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(0x2100, 2)),
      q,
    ),
    PARSE.NOTIMP,
    'opcode NOTIFY (4)',
  );
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(0x2800, 2)),
      q,
    ),
    PARSE.NOTIMP,
    'opcode UPDATE (5)',
  );
  // NOTIFY carries the SOA in the answer section (RFC 1996 §3.7): read whole, then NOTIMP; a
  // malformed one is FORMERR. A TSIG RR that is not the last record is FORMERR (RFC 8945 §5.2).
  const soaRR = hex('c00c 0006 0001 00000258 0016 00 00 00000001 00000000 00000000 00000000 00000000');
  const notifyWithSoa = Buffer.concat([QUERY.subarray(0, 33), soaRR, QUERY.subarray(33)]);
  notifyWithSoa.writeUInt16BE(0x2000, 2);
  notifyWithSoa.writeUInt16BE(1, 6);
  tt.equal(parseQuery(notifyWithSoa, q), PARSE.NOTIMP, 'NOTIFY with its SOA in the answer');
  tt.equal(parseQuery(notifyWithSoa.subarray(0, 40), q), PARSE.FORMERR, 'NOTIFY whose SOA is cut short');
  const tsigRR = hex('00 00fa 00ff 00000000 0000');
  const tsigFirst = Buffer.concat([QUERY.subarray(0, 33), tsigRR, QUERY.subarray(33)]);
  tsigFirst.writeUInt16BE(2, 10);
  tt.equal(parseQuery(tsigFirst, q), PARSE.FORMERR, 'TSIG before OPT');
  const tsigLast = Buffer.concat([QUERY, tsigRR]);
  tsigLast.writeUInt16BE(2, 10);
  tt.equal(parseQuery(tsigLast, q), PARSE.OK, 'TSIG last');
  tt.equal(q.tsigAt, QUERY.length, 'tsigAt points at its owner name');
  tt.equal(parseQuery(QUERY.subarray(0, 20), q), PARSE.FORMERR, 'question cut short');
  tt.equal(
    parseQuery(hex('0001 0000 0001 0000 0000 0000 c00c 0001 0001'), q),
    PARSE.FORMERR,
    'pointer in the question',
  );
  tt.equal(
    parseQuery(hex(`0001 0000 0001 0000 0000 0000 40${'61'.repeat(64)} 00 0001 0001`), q),
    PARSE.FORMERR,
    'label of 64',
  );
  const long = `${'3f'.concat('61'.repeat(63)).repeat(4)}00`;
  tt.equal(
    parseQuery(hex(`0001 0000 0001 0000 0000 0000 ${long} 0001 0001`), q),
    PARSE.FORMERR,
    'name over 255',
  );
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(1, 6)),
      q,
    ),
    PARSE.FORMERR,
    'ANCOUNT 1 with no answer',
  );
  const twoOpt = Buffer.concat([mod((b) => b.writeUInt16BE(2, 10)), QUERY.subarray(33)]);
  tt.equal(parseQuery(twoOpt, q), PARSE.FORMERR, 'two OPT records');
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(9, 33 + 9)),
      q,
    ),
    PARSE.FORMERR,
    'OPT RDLENGTH past the end',
  );
  tt.equal(parseQuery(Buffer.concat([QUERY, Buffer.from([0])]), q), PARSE.FORMERR, 'trailing garbage');
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(41, 29)),
      q,
    ),
    PARSE.OK,
    'qtype OPT is a readable question (answered like any type with no data, like Knot)',
  );
  tt.end();
});

t.test('parseQuery: errors keep what could be read — the question, and a valid OPT', (tt) => {
  const q = new QueryInfo();
  const mod = (f: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(QUERY);
    f(b);
    return b;
  };
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(0x2100, 2)),
      q,
    ),
    PARSE.NOTIMP,
    'NOTIFY',
  );
  tt.equal(q.questionEnd, 33, 'NOTIMP: the question was read');
  tt.ok(q.hasEdns && q.dnssecOk, 'NOTIMP: the OPT was read');
  // An answer record before the OPT: FORMERR, with the question and the OPT.
  const withAnswer = Buffer.concat([
    QUERY.subarray(0, 33),
    hex('c00c 0001 0001 00000e10 0004 c0000201'),
    QUERY.subarray(33),
  ]);
  withAnswer.writeUInt16BE(1, 6);
  tt.equal(parseQuery(withAnswer, q), PARSE.FORMERR, 'ANCOUNT 1 in a QUERY');
  tt.equal(q.questionEnd, 33);
  tt.ok(q.hasEdns, 'the OPT after it is still found');
  tt.equal(
    parseQuery(
      mod((b) => b.writeUInt16BE(0, 4)),
      q,
    ),
    PARSE.FORMERR,
    'QDCOUNT 0',
  );
  tt.equal(q.questionEnd, 12, 'no question to echo');
  const twoOpt = Buffer.concat([mod((b) => b.writeUInt16BE(2, 10)), QUERY.subarray(33)]);
  tt.equal(parseQuery(twoOpt, q), PARSE.FORMERR, 'two OPTs');
  tt.equal(q.questionEnd, 33);
  tt.notOk(q.hasEdns, 'two OPTs: none of them is valid (RFC 6891 §6.1.1)');
  tt.end();
});

t.test('property: random and mutated packets never make the reader throw', (tt) => {
  const q = new QueryInfo();
  const codes = new Set<number>(Object.values(PARSE));
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 600 }), (b) => codes.has(parseQuery(b, q))),
    { numRuns: 2000 },
  );
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.nat(QUERY.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
      fc.nat(QUERY.length),
      (muts, cut) => {
        const b = Buffer.from(QUERY.subarray(0, Math.max(cut, 1)));
        for (const [i, v] of muts) if (i < b.length) b[i] = v;
        const r = parseQuery(b, q);
        return codes.has(r) && (r === PARSE.DROP || r === PARSE.FORMERR || q.questionEnd <= b.length);
      },
    ),
    { numRuns: 2000 },
  );
  tt.pass('4000 packets read without an exception');
  tt.end();
});

t.test('writer: compression against the question and earlier names (RFC 1035 §4.1.4)', (tt) => {
  const q = new QueryInfo();
  parseQuery(QUERY, q);
  const w = new MessageWriter();
  w.begin(QUERY, q.questionEnd, 512);
  const owner = nameFromText('www.example.com.');
  const target = nameFromText('mail.example.com.');
  const mx = Uint8Array.from([0, 10, ...target]);
  const n = w.writeRRset({ owner, type: 15, class: 1, ttl: 300, rdatas: [mx] }, () => [
    { offset: 2, compress: true },
  ]);
  tt.equal(n, 1);
  // owner → pointer to 12; MX exchange "mail" + pointer to example.com. at 16
  const rr = w.buf.subarray(q.questionEnd, w.pos).toString('hex');
  tt.equal(rr, `c00c 000f 0001 0000012c 0009 000a 046d61696c c010`.replace(/\s/g, ''));
  w.setCounts(1, 0, 0);
  w.setFlags(q.flags, true, false, 0);
  tt.equal(w.buf.readUInt16BE(2), 0x8500, 'QR, AA, RD copied');
  tt.end();
});

t.test('writer: an RRset that does not fit is rolled back whole', (tt) => {
  const q = new QueryInfo();
  parseQuery(QUERY, q);
  const w = new MessageWriter();
  w.begin(QUERY, q.questionEnd, q.questionEnd + 20);
  const a = Uint8Array.of(192, 0, 2, 1);
  const before = w.pos;
  tt.equal(
    w.writeRRset(
      { owner: nameFromText('www.example.com.'), type: 1, class: 1, ttl: 1, rdatas: [a, a] },
      null,
    ),
    -1,
  );
  tt.equal(w.pos, before);
  tt.end();
});

t.test('writer: a rolled-back RRset leaves no compression target behind', (tt) => {
  const q = new QueryInfo();
  parseQuery(QUERY, q);
  const w = new MessageWriter();
  const a = Uint8Array.of(192, 0, 2, 1);
  // Room for one A record with a new owner name, not for two.
  w.begin(QUERY, q.questionEnd, q.questionEnd + 40);
  const owner = nameFromText('host.other.net.');
  tt.equal(w.writeRRset({ owner, type: 1, class: 1, ttl: 1, rdatas: [a, a] }, null), -1, 'rolled back');
  // The same owner again, one record: it fits, and must be written out, not as a pointer to the
  // bytes of the rolled-back set (which are gone).
  tt.equal(w.writeRRset({ owner, type: 1, class: 1, ttl: 1, rdatas: [a] }, null), 1);
  const rr = w.buf.subarray(q.questionEnd, w.pos).toString('hex');
  tt.equal(rr, `04686f7374 056f74686572 036e6574 00 0001 0001 00000001 0004 c0000201`.replace(/\s/g, ''));
  tt.end();
});

t.test('response flags: opcode, RD and CD copied; AA/TC/rcode set; RA and AD never', (tt) => {
  tt.equal(responseFlags(0x0130, false, false, 3), 0x8113, 'RD+AD+CD in → QR RD CD, NXDOMAIN');
  tt.equal(responseFlags(0x2000, true, true, 0), 0xa600);
  tt.equal(responseFlags(0x0080, false, false, 0), 0x8000, 'RA in the query is not copied');
  tt.end();
});

t.test('writer: every suffix of a written name is a target, in any letter case (RFC 1035 §4.1.4)', (tt) => {
  const q = new QueryInfo();
  parseQuery(QUERY, q); // www.example.com. at 12: example.com. at 16, com. at 24
  const w = new MessageWriter();
  w.begin(QUERY, q.questionEnd, 512);
  const a = Uint8Array.of(192, 0, 2, 1);
  const rr = (owner: string): number =>
    w.writeRRset({ owner: nameFromText(owner), type: 1, class: 1, ttl: 1, rdatas: [a] }, null);
  tt.equal(rr('a.mail.example.com.'), 1); // at 33: "a" "mail" (at 35) + pointer to 16
  tt.equal(rr('B.MAIL.Example.COM.'), 1); // at 56: "B" + pointer to mail.example.com. at 35
  tt.equal(rr('mail.example.com.'), 1); // at 74: a pointer to 35
  tt.equal(rr('org.'), 1); // at 90: nothing to point to
  tt.equal(rr('com.'), 1); // at 109: a pointer to 24
  const tail = '0001 0001 00000001 0004 c0000201';
  tt.equal(
    w.buf.subarray(q.questionEnd, w.pos).toString('hex'),
    [
      `0161 046d61696c c010 ${tail}`,
      `0142 c023 ${tail}`,
      `c023 ${tail}`,
      `036f7267 00 ${tail}`,
      `c018 ${tail}`,
    ]
      .join('')
      .replace(/\s/g, ''),
  );
  tt.end();
});
