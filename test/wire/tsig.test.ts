/**
 * TSIG (RFC 8945): sign/verify round trips, the error cases of §5.2–5.4 (BADKEY, BADSIG, BADTIME,
 * BADTRUNC, timers-only chaining), and interop with Knot: Knot accepts queries popdns signs, and popdns
 * verifies Knot's signed answers, its BADTIME answer and a multi-message AXFR (§5.3.1).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  TSIG_ERR,
  type TsigKey,
  TsigStreamVerifier,
  tsigKeyName,
  tsigRecordOf,
  tsigSign,
  tsigSignResponse,
  tsigVerify,
} from '../../src/wire/tsig.js';
import { buildQuery } from '../helpers/dns.js';
import { freePort, needTool, startProcess, tmpDir } from '../helpers/peers.js';
import { answerSoaCount, tcpStream } from '../helpers/xfr.js';
import { tcpExchange } from '../helpers/dns.js';

const secret = Buffer.from('c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA==', 'base64');
const key: TsigKey = { name: 'xfr.example.', algorithm: 'hmac-sha256', secret };
const keys = new Map([[key.name, key]]);

/** A response built from a query: QR set, no records. */
function responseTo(q: Buffer, rcode = 0): Buffer {
  const r = Buffer.from(q);
  r.writeUInt16BE(0x8000 | rcode, 2);
  r.writeUInt16BE(0, 10);
  const end = 12 + r.subarray(12).indexOf(0) + 5;
  return r.subarray(0, end);
}

t.test('key names normalise to lower-case absolute form', (tt) => {
  tt.equal(tsigKeyName('XFR.Example'), 'xfr.example.');
  tt.equal(tsigKeyName('xfr.example.'), 'xfr.example.');
  tt.end();
});

t.test('round trip for every algorithm; the response chains on the request MAC', (tt) => {
  for (const algorithm of ['hmac-sha1', 'hmac-sha256', 'hmac-sha384', 'hmac-sha512'] as const) {
    const k: TsigKey = { name: 'k.', algorithm, secret };
    const ring = new Map([[k.name, k]]);
    const q = buildQuery('example.com.', 'SOA', { id: 4242 });
    const signed = tsigSign(q, k, { now: 1_700_000_000 });
    tt.equal(signed.message.readUInt16BE(10), 1, 'ARCOUNT bumped');
    const v = tsigVerify(signed.message, ring, { now: 1_700_000_100 });
    tt.equal(v.status, 'ok', algorithm);
    tt.same(v.stripped, q, 'stripped = the unsigned query');
    tt.equal(v.origId, 4242);
    const resp = tsigSignResponse(responseTo(q), v, 1_700_000_100);
    tt.equal(tsigVerify(resp.message, ring, { requestMac: v.mac!, now: 1_700_000_100 }).status, 'ok');
    tt.equal(
      tsigVerify(resp.message, ring, { now: 1_700_000_100 }).status,
      'badsig',
      'needs the request MAC',
    );
  }
  tt.end();
});

t.test('§5.2 error cases', (tt) => {
  const now = 1_700_000_000;
  const q = buildQuery('example.com.', 'SOA', { id: 7 });
  const signed = tsigSign(q, key, { now }).message;
  tt.equal(tsigVerify(q, keys).status, 'unsigned');

  // Unknown key → BADKEY, answered with an unsigned TSIG (MAC size 0) naming the key.
  const other: TsigKey = { name: 'other.', algorithm: 'hmac-sha256', secret };
  const unknown = tsigVerify(tsigSign(q, other, { now }).message, keys, { now });
  tt.equal(unknown.status, 'badkey');
  tt.equal(unknown.error, TSIG_ERR.BADKEY);
  const badkeyResp = tsigSignResponse(responseTo(q, 9), unknown, now).message;
  const rr = tsigRecordOf(badkeyResp)!;
  tt.equal(rr.error, TSIG_ERR.BADKEY);
  tt.equal(rr.mac.length, 0, 'unsigned error (§5.3.2)');

  // Same name, other algorithm → BADKEY.
  const wrongAlg: TsigKey = { ...key, algorithm: 'hmac-sha512' };
  tt.equal(tsigVerify(tsigSign(q, wrongAlg, { now }).message, keys, { now }).status, 'badkey');

  // A flipped MAC bit → BADSIG; so does a changed message byte.
  const flipped = Buffer.from(signed);
  flipped[flipped.length - 10]! ^= 1; // inside the MAC (32 bytes before the last 6)
  tt.equal(tsigVerify(flipped, keys, { now }).status, 'badsig');
  const tampered = Buffer.from(signed);
  tampered[13]! ^= 0x20; // a question name letter
  const ts = tsigVerify(tampered, keys, { now });
  tt.equal(ts.status, 'badsig');
  tt.equal(ts.error, TSIG_ERR.BADSIG);
  tt.equal(tsigRecordOf(tsigSignResponse(responseTo(q, 9), ts, now).message)!.mac.length, 0);

  // Time outside the fudge, MAC good → BADTIME; the answer is signed, echoes Time Signed and carries
  // the server's time in Other Data (§5.2.3).
  const late = tsigVerify(signed, keys, { now: now + 301 });
  tt.equal(late.status, 'badtime');
  tt.equal(tsigVerify(signed, keys, { now: now - 300 }).status, 'ok', 'the fudge is inclusive');
  const bt = tsigSignResponse(responseTo(q, 9), late, now + 301).message;
  const btr = tsigRecordOf(bt)!;
  tt.equal(btr.error, TSIG_ERR.BADTIME);
  tt.equal(btr.timeSigned, now);
  tt.equal(btr.otherData.length, 6);
  tt.equal(btr.otherData.readUIntBE(0, 6), now + 301);
  tt.equal(tsigVerify(bt, keys, { requestMac: late.mac!, now }).status, 'ok', 'BADTIME answer is signed');

  // A bad MAC with a bad time is BADSIG, not BADTIME (MAC checked first).
  tt.equal(tsigVerify(flipped, keys, { now: now + 10000 }).status, 'badsig');

  // Truncated MAC: rewrite MAC size 32 → 16 (half of SHA-256, allowed size) → BADTRUNC; 8 → FORMERR.
  const rec = tsigRecordOf(signed)!;
  const truncated = (n: number): Buffer => {
    const macAt = signed.length - 6 - rec.mac.length;
    const out = Buffer.concat([
      signed.subarray(0, macAt - 2),
      Buffer.from([0, n]),
      signed.subarray(macAt, macAt + n),
      signed.subarray(signed.length - 6),
    ]);
    const rdlenAt = signed.length - ('hmac-sha256.'.length + 1 + 16 + rec.mac.length) - 2;
    out.writeUInt16BE(out.readUInt16BE(rdlenAt) - (rec.mac.length - n), rdlenAt);
    return out;
  };
  const t16 = tsigVerify(truncated(16), keys, { now });
  tt.equal(t16.status, 'badsig');
  tt.equal(t16.error, TSIG_ERR.BADTRUNC);
  tt.equal(tsigVerify(truncated(8), keys, { now }).status, 'formerr');

  // A TSIG that is not the last record → FORMERR.
  const twice = tsigSign(signed, key, { now }).message;
  tt.equal(tsigVerify(twice, keys, { now }).status, 'formerr');
  tt.end();
});

t.test('§5.3.1 multi-message: timers-only chaining with unsigned messages between', (tt) => {
  const now = 1_700_000_000;
  const q = tsigSign(buildQuery('example.com.', 'AXFR', { id: 1 }), key, { now });
  const body = (i: number): Buffer => {
    const r = responseTo(q.message.subarray(0, q.message.length - 0));
    r.writeUInt16BE(i, 0);
    return responseTo(buildQuery(`m${i}.example.com.`, 'A', { id: 1 }));
  };
  const m1 = tsigSign(body(1), key, { requestMac: q.mac, now });
  const m2 = body(2); // unsigned
  // m3's digest: prior MAC | m2 | m3 | timers.
  const m3 = tsigSign(Buffer.concat([m2, body(3)]), key, { priorMac: m1.mac, timersOnly: true, now });
  const m3msg = Buffer.concat([m3.message.subarray(m2.length)]);
  m3msg.writeUInt16BE(m3.message.readUInt16BE(10), 10);
  const v = new TsigStreamVerifier(key, q.mac, () => now);
  tt.equal(v.next(m1.message).status, 'ok');
  tt.equal(v.next(m2).status, 'pending');
  tt.notOk(v.finish(), 'cannot end on an unsigned message');
  tt.equal(v.next(m3msg).status, 'ok');
  tt.ok(v.finish());

  const v2 = new TsigStreamVerifier(key, q.mac, () => now);
  tt.equal(v2.next(m2).status, 'formerr', 'the first message must be signed');
  const v3 = new TsigStreamVerifier(key, q.mac, () => now);
  v3.next(m1.message);
  tt.equal(
    v3.next(tsigSign(body(3), key, { priorMac: m1.mac, now }).message).status,
    'badsig',
    'full variables ≠ timers',
  );
  const v4 = new TsigStreamVerifier(key, q.mac, () => now);
  v4.next(m1.message);
  for (let i = 0; i < 99; i++) tt.equal(v4.next(m2).status, 'pending');
  tt.equal(v4.next(m2).status, 'formerr', 'at most 99 unsigned in a row');
  tt.end();
});

t.test('interop with knotd', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const dir = tmpDir(tt, 'popdns-tsig-knot-');
  const port = await freePort();
  const lines = [
    '$ORIGIN example.com.',
    '$TTL 600',
    '@ SOA ns1.example.net. h.example.com. 7 900 180 1209600 180',
    '@ NS ns1.example.net.',
  ];
  for (let i = 0; i < 6000; i++)
    lines.push(`r${i} TXT "record number ${i} with some padding to fill messages"`);
  writeFileSync(join(dir, 'example.com.zone'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(dir, 'knot.conf'),
    [
      'server:',
      `    listen: 127.0.0.1@${port}`,
      `    rundir: ${dir}`,
      'database:',
      `    storage: ${dir}`,
      'log:',
      '  - target: stderr',
      '    any: info',
      'key:',
      '  - id: xfr.example.',
      '    algorithm: hmac-sha256',
      `    secret: ${secret.toString('base64')}`,
      'acl:',
      '  - id: keyed',
      '    address: 127.0.0.0/8',
      '    key: xfr.example.',
      '    action: transfer',
      'template:',
      '  - id: default',
      `    storage: ${dir}`,
      '    zonefile-sync: -1',
      '    journal-content: none',
      '    acl: keyed',
      'zone:',
      '  - domain: example.com.',
      '    file: example.com.zone',
      '',
    ].join('\n'),
  );
  await startProcess(tt, 'knotd', ['-c', join(dir, 'knot.conf')], (o) => o.includes('loaded, serial'));

  // A query popdns signed: Knot answers it signed, popdns verifies the answer with the request MAC.
  const q = tsigSign(buildQuery('example.com.', 'SOA', { id: 99 }), key);
  const [r] = await tcpExchange(port, [q.message]);
  tt.equal(r!.readUInt16BE(2) & 0xf, 0, 'NOERROR from Knot');
  tt.equal(tsigVerify(r!, keys, { requestMac: q.mac }).status, 'ok', "Knot's signed answer verifies");

  // Time far off: Knot answers NOTAUTH with a signed BADTIME carrying its own time.
  const old = tsigSign(buildQuery('example.com.', 'SOA', { id: 100 }), key, {
    now: Math.floor(Date.now() / 1000) - 3600,
  });
  const [rb] = await tcpExchange(port, [old.message]);
  tt.equal(rb!.readUInt16BE(2) & 0xf, 9, 'NOTAUTH');
  const rec = tsigRecordOf(rb!)!;
  tt.equal(rec.error, TSIG_ERR.BADTIME);
  tt.equal(rec.timeSigned, tsigRecordOf(old.message)!.timeSigned, 'Time Signed echoed from the request');
  tt.ok(Math.abs(rec.otherData.readUIntBE(0, 6) - Date.now() / 1000) < 5, "Other Data = Knot's time");
  // Its MAC is good (badtime, not badsig: the time is checked after the MAC).
  tt.equal(tsigVerify(rb!, keys, { requestMac: old.mac }).status, 'badtime', 'the BADTIME answer is signed');

  // A bad MAC: Knot answers NOTAUTH, BADSIG, MAC size 0.
  const bad = Buffer.from(q.message);
  bad[bad.length - 10]! ^= 1;
  const [rs] = await tcpExchange(port, [bad]);
  tt.equal(rs!.readUInt16BE(2) & 0xf, 9);
  tt.equal(tsigRecordOf(rs!)!.error, TSIG_ERR.BADSIG);

  // Multi-message AXFR, each message verified in turn.
  const ax = tsigSign(buildQuery('example.com.', 'AXFR', { id: 101 }), key);
  let soas = 0;
  const msgs = await tcpStream(port, ax.message, (m) => {
    soas += answerSoaCount(m[m.length - 1]!);
    return soas >= 2;
  });
  tt.ok(msgs.length > 1, `${msgs.length} messages`);
  const v = new TsigStreamVerifier(key, ax.mac);
  const statuses = msgs.map((m) => v.next(m).status);
  tt.ok(
    statuses.every((s) => s === 'ok' || s === 'pending'),
    statuses.join(','),
  );
  tt.ok(v.finish(), 'AXFR stream verified');
});
