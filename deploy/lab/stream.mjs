// A steady stream of `CHAOS TXT id.server` queries, each from a fresh UDP socket (a new source port,
// so ECMP spreads them over the PoPs), to each given anycast address. Runs inside the client
// namespace; prints one JSON line per query: {"t": epoch ms, "fam": 4|6, "ok": bool, "id": "popa.lab"}.
// Bounded: stops after --count rounds or when stdin closes.
//   node stream.mjs --interval 50 --timeout 500 --count 1200 198.51.100.53 2001:db8:53::53
import { createSocket } from 'node:dgram';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  if (i < 0) return def;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const interval = opt('--interval', 50);
const timeout = opt('--timeout', 500);
const count = Math.min(opt('--count', 600), 10000);
const targets = args;

// id.server. CH TXT, ID patched per query.
const QNAME = Buffer.from([2, 0x69, 0x64, 6, 0x73, 0x65, 0x72, 0x76, 0x65, 0x72, 0]);
function query(id) {
  const b = Buffer.alloc(12 + QNAME.length + 4);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(1, 4);
  QNAME.copy(b, 12);
  b.writeUInt16BE(16, 12 + QNAME.length);
  b.writeUInt16BE(3, 14 + QNAME.length);
  return b;
}
function identity(msg) {
  // Header, question (same length as ours), then the TXT answer: name pointer(2) type class ttl rdlen, txt.
  const off = 12 + QNAME.length + 4;
  if (msg.length < off + 13 || msg.readUInt16BE(6) < 1) return null;
  const len = msg[off + 12];
  return msg.subarray(off + 13, off + 13 + len).toString();
}

let sent = 0;
let stop = false;
process.stdin.on('end', () => (stop = true));
process.stdin.on('data', () => {});
process.stdin.resume();

function one(target) {
  const fam = target.includes(':') ? 6 : 4;
  const t = Date.now();
  const id = (Math.random() * 0xffff) | 0;
  const s = createSocket(fam === 6 ? 'udp6' : 'udp4');
  let done = false;
  const finish = (ok, who) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    s.close();
    process.stdout.write(`${JSON.stringify({ t, fam, ok, id: who })}\n`);
  };
  const timer = setTimeout(() => finish(false, null), timeout);
  s.on('error', () => finish(false, null));
  s.on('message', (m) => {
    if (m.readUInt16BE(0) !== id) return;
    const who = identity(m);
    finish(who !== null && (m[3] & 0xf) === 0, who);
  });
  s.send(query(id), 53, target);
}

const timer = setInterval(() => {
  if (stop || sent >= count) {
    clearInterval(timer);
    setTimeout(() => process.exit(0), timeout + 50);
    return;
  }
  sent++;
  for (const target of targets) one(target);
}, interval);
