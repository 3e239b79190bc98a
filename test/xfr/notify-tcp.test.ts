/**
 * NOTIFY over TCP (RFC 1996 §3.4 lets a NOTIFY travel over TCP; RFC 7766 §6.2.1 a connection carry
 * several messages): a popdns secondary of Knot, with Knot's own NOTIFY switched off and the SOA
 * refresh at 3600 s, so only the NOTIFY we send can explain a transfer. A NOTIFY signed with the zone's
 * key, over TCP from the primary's address, is acknowledged (NOERROR, AA, a response signed with the
 * same key, RFC 8945 §5.3) and makes the secondary fetch the change by IXFR at once; over TCP from
 * another address it is REFUSED, unsigned or signed with another key NOTAUTH, and nothing is fetched.
 * The secondary runs two workers: the worker that reads a NOTIFY passes it to the primary process.
 */
import { connect } from 'node:net';
import t from 'tap';
import { typeFromText } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { buildMessage, readMessage } from '../../src/wire/records.js';
import { type TsigKey, tsigSign, tsigVerify } from '../../src/wire/tsig.js';
import { freePort, needTool } from '../helpers/peers.js';
import {
  KEY_NAME,
  newSecret,
  serialOf,
  smallZone,
  startKnotPrimary,
  startSecondary,
  waitUntil,
} from '../helpers/secondary.js';

function notifyMsg(zone: string, id: number): Buffer {
  return buildMessage({
    id,
    flags: (4 << 11) | 0x0400,
    question: { name: nameFromText(`${zone}.`), type: typeFromText('SOA')!, class: 1 },
  });
}

/** Sends each message on one TCP connection from `localAddress`; resolves with the responses (bounded). */
function tcpNotify(port: number, msgs: Buffer[], localAddress = '127.0.0.1'): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const out: Buffer[] = [];
    let buf = Buffer.alloc(0);
    const sock = connect({ port, host: '127.0.0.1', localAddress });
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(out);
    };
    const timer = setTimeout(done, 5000);
    sock.on('connect', () => {
      for (const m of msgs) sock.write(Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]));
    });
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0))));
        buf = buf.subarray(2 + buf.readUInt16BE(0));
      }
      if (out.length === msgs.length) done();
    });
    sock.on('error', done);
    sock.on('close', done);
  });
}

t.test('NOTIFY over TCP to a popdns secondary', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const secret = newSecret();
  const otherSecret = newSecret();
  const secPort = await freePort();
  const knot = await startKnotPrimary(
    tt,
    secret,
    secPort,
    { 'p.test': smallZone('p.test', 1) },
    { noNotify: true },
  );
  const sec = await startSecondary(
    tt,
    [
      'tsig-keys:',
      `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`,
      'secondaries:',
      `  - { zone: p.test, primaries: ["127.0.0.1:${knot.port}"], key: ${KEY_NAME} }`,
    ].join('\n'),
    // Two workers: a NOTIFY a worker takes over TCP goes to the primary process (IPC) and back.
    { port: secPort, workers: 2 },
  );
  tt.ok(await waitUntil(async () => (await serialOf(sec.port, 'p.test')) === 1), 'serial 1 by AXFR');

  const key: TsigKey = {
    name: `${KEY_NAME}.`,
    algorithm: 'hmac-sha256',
    secret: Buffer.from(secret, 'base64'),
  };
  const wrong: TsigKey = { ...key, secret: Buffer.from(otherSecret, 'base64') };
  const keyring = new Map([[key.name, key]]);

  // A change at Knot: journalled, no NOTIFY sent (noNotify), refresh 3600 s: the secondary stays at 1.
  knot.set('p.test', 'www', 300, 'A', '192.0.2.77');
  await new Promise((r) => setTimeout(r, 1500));
  tt.equal(await serialOf(sec.port, 'p.test'), 1, 'no NOTIFY from Knot: still serial 1');

  // Refusals over TCP, three on one connection from 127.0.0.1 and one from another address.
  const refusedFrom = await tcpNotify(
    sec.port,
    [tsigSign(notifyMsg('p.test', 11), key).message],
    '127.0.0.2',
  );
  tt.equal(
    refusedFrom[0] && readMessage(refusedFrom[0]).rcode,
    5,
    'from an address that is no primary: REFUSED',
  );
  const replies = await tcpNotify(sec.port, [
    notifyMsg('p.test', 12),
    tsigSign(notifyMsg('p.test', 13), wrong).message,
    tsigSign(notifyMsg('nowhere.test', 14), key).message,
  ]);
  tt.equal(replies.length, 3, 'three answers on one connection');
  // RFC 7766 §7: answers on one connection may come in any order; each carries its request's ID.
  const byId = new Map(replies.map((r) => [r.readUInt16BE(0), readMessage(r).rcode]));
  tt.equal(byId.get(12), 9, 'unsigned: NOTAUTH');
  tt.equal(byId.get(13), 9, 'signed with a key the zone does not use: NOTAUTH');
  tt.equal(byId.get(14), 9, 'a zone we do not follow: NOTAUTH');
  await new Promise((r) => setTimeout(r, 1000));
  tt.equal(await serialOf(sec.port, 'p.test'), 1, 'none of them made the secondary fetch');

  // The real thing: signed with the zone's key, over TCP from the primary's address.
  const signed = tsigSign(notifyMsg('p.test', 15), key);
  const [ack] = await tcpNotify(sec.port, [signed.message]);
  tt.ok(ack, 'an answer over TCP');
  const m = readMessage(ack!);
  tt.equal(m.rcode, 0, 'NOERROR');
  tt.ok(m.qr && (m.flags & 0x0400) !== 0, 'QR and AA set (RFC 1996 §4.7)');
  tt.equal(m.opcode, 4, 'opcode NOTIFY');
  tt.equal(
    tsigVerify(ack!, keyring, { requestMac: signed.mac }).status,
    'ok',
    'the response is signed with the key, over the request MAC (RFC 8945 §5.3)',
  );
  tt.ok(
    await waitUntil(async () => (await serialOf(sec.port, 'p.test')) === 2, 10_000),
    'serial 2 after the TCP NOTIFY',
  );
  tt.match(sec.output(), `xfr in zone p.test. from 127.0.0.1:${knot.port} IXFR serial 1 -> 2`, 'by IXFR');
  tt.match(
    knot.log(),
    /\[p\.test\.\] IXFR, outgoing, remote 127\.0\.0\.1@\d+, started, serial 1 -> 2/,
    "Knot's log agrees",
  );
});
