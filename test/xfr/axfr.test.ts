/**
 * The AXFR writer (src/xfr/axfr.ts) on its own: every record of the zone comes out exactly once,
 * between two SOAs (RFC 5936 §2.2), with names that decompress (RFC 1035 §4.1.4) to the zone's —
 * across many messages, names written past the 16 KiB a pointer can reach, nodes with several
 * RRsets, deep names, mixed case, and NS/MX/CNAME targets inside and outside the zone.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { TYPE } from '../../src/wire/constants.js';
import { parseQuery, QueryInfo } from '../../src/wire/message.js';
import { nameToText } from '../../src/wire/name.js';
import { readMessage, type WireRecord } from '../../src/wire/records.js';
import { axfrMessages } from '../../src/xfr/axfr.js';
import { zoneRecords } from '../../src/xfr/versions.js';
import { loadZone } from '../../src/zone/load.js';
import { buildQuery } from '../helpers/dns.js';
import { tmpDir } from '../helpers/peers.js';

function zoneText(): string {
  const lines = [
    '$ORIGIN example.com.',
    '$TTL 3600',
    '@ SOA ns1 hostmaster 7 7200 3600 1209600 300',
    '@ NS ns1',
    '@ NS ns.elsewhere.example.',
    '@ MX 10 mail',
    'ns1 A 192.0.2.1',
    'mail A 192.0.2.2',
    'mail AAAA 2001:db8::2',
    'MixedCase.Deep.Sub A 192.0.2.3',
    'sub NS ns.sub',
    'ns.sub A 192.0.2.4',
  ];
  for (let i = 0; i < 3000; i++) {
    const host = `host-with-a-longer-label-${i}`;
    lines.push(`${host} A 10.0.${i >> 8}.${i & 255}`);
    if (i % 3 === 0) lines.push(`${host} AAAA 2001:db8::${i.toString(16)}`);
    if (i % 5 === 0) lines.push(`alias${i}.b.c CNAME ${host}`);
    if (i % 7 === 0) lines.push(`x${i}.b.c MX 5 mx.outside.example.`);
    if (i % 11 === 0) lines.push(`${host} TXT "text ${i}"`);
  }
  return `${lines.join('\n')}\n`;
}

const key = (r: WireRecord): string =>
  `${nameToText(r.owner)} ${r.type} ${r.ttl} ${Buffer.from(r.rdata).toString('hex')}`;

t.test('AXFR messages hold every record once, SOA first and last, names decompressing to the zone', (tt) => {
  const dir = tmpDir(tt, 'popdns-axfr-');
  const file = join(dir, 'example.com.zone');
  writeFileSync(file, zoneText());
  const { result } = loadZone(file);
  tt.ok(result.zone, 'the zone loads');
  const zone = result.zone!;
  const query = buildQuery('example.com.', 'AXFR', { id: 4242 });
  const q = new QueryInfo();
  parseQuery(query, q);

  for (const limit of [65535, 4000]) {
    const counts = { records: 0 };
    const got: WireRecord[] = [];
    let messages = 0;
    let maxLen = 0;
    for (const m of axfrMessages(zone, query, q, limit, counts)) {
      const msg = readMessage(m);
      tt.equal(msg.id, 4242, 'the query ID');
      tt.equal(msg.question.length, messages === 0 ? 1 : 0, 'the question in the first message only');
      tt.ok(msg.qr && msg.aa, 'QR and AA');
      tt.equal(msg.rcode, 0, 'NOERROR');
      got.push(...msg.answer);
      maxLen = Math.max(maxLen, m.length);
      messages++;
    }
    tt.ok(maxLen <= limit, `no message over ${limit} bytes (largest ${maxLen})`);
    tt.ok(messages > 1, `${messages} messages`);
    tt.equal(counts.records, got.length, 'counts.records');
    tt.equal(got[0]!.type, TYPE.SOA, 'SOA first');
    tt.equal(got.at(-1)!.type, TYPE.SOA, 'SOA last');
    const expected = zoneRecords(zone).map(key).sort();
    tt.same(got.slice(0, -1).map(key).sort(), expected, `limit ${limit}: every record once, as in the zone`);
  }
  // A message of 64 KiB reaches past the 16 KiB pointers can point to: the zone is ~200 KiB on the wire.
  tt.end();
});

t.test('EDNS in the request: an OPT in every message', (tt) => {
  const dir = tmpDir(tt, 'popdns-axfr-');
  const file = join(dir, 'example.com.zone');
  writeFileSync(file, zoneText());
  const zone = loadZone(file).result.zone!;
  const query = buildQuery('example.com.', 'AXFR', { edns: true });
  const q = new QueryInfo();
  parseQuery(query, q);
  tt.ok(q.hasEdns, 'the request has EDNS');
  for (const m of axfrMessages(zone, query, q, 65535, { records: 0 })) {
    const msg = readMessage(m);
    tt.equal(msg.additional.filter((r) => r.type === TYPE.OPT).length, 1, 'one OPT');
  }
  tt.end();
});
