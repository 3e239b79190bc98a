// @ts-check
/** The platform ceiling: a bare node:dgram server that sends each query back unchanged (QR set). */
import { createSocket } from 'node:dgram';

const port = Number(process.argv[2] ?? 5399);
const s = createSocket('udp4');
s.on('message', (msg, rinfo) => {
  msg[2] |= 0x80;
  s.send(msg, rinfo.port, rinfo.address);
});
s.bind(port, '127.0.0.1', () => process.stdout.write(`echo listening ${port}\n`));
// Exit normally on SIGTERM, so `node --cpu-prof` writes its profile (bench/profile.js PROFILE_SERVER=echo).
process.on('SIGTERM', () => process.exit(0));
