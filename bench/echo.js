// @ts-check
/**
 * The platform ceiling: a bare node:dgram server that sends each query back unchanged (QR set).
 *
 * ECHO_PAD=N0,N1 (bench/dnssec.js): instead, answer with a fresh N0-octet buffer (N1 when the query's
 * OPT, the last record, has the DO bit) holding the query and zeros: what Node's dgram path and the
 * kernel charge for response sizes alone (popdns's DO=0 and DO=1 answers), with no DNS work.
 */
import { createSocket } from 'node:dgram';

const port = Number(process.argv[2] ?? 5399);
const pad = (process.env.ECHO_PAD ?? '').split(',').map(Number);
const padded = pad.length === 2 && pad.every((n) => n > 0);
const s = createSocket('udp4');
s.on('message', (msg, rinfo) => {
  msg[2] |= 0x80;
  if (!padded) {
    s.send(msg, rinfo.port, rinfo.address);
    return;
  }
  // An OPT with no options ends the query: its flags' high bit (DO) is 4 octets from the end.
  const size = Math.max(msg.length, pad[msg.length >= 23 && (msg[msg.length - 4] & 0x80) !== 0 ? 1 : 0]);
  const out = Buffer.allocUnsafe(size);
  out.set(msg, 0);
  out.fill(0, msg.length);
  s.send(out, rinfo.port, rinfo.address);
});
s.bind(port, '127.0.0.1', () => process.stdout.write(`echo listening ${port}\n`));
// Exit normally on SIGTERM, so `node --cpu-prof` writes its profile (bench/profile.js PROFILE_SERVER=echo).
process.on('SIGTERM', () => process.exit(0));
