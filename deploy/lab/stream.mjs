// A steady stream of `CHAOS TXT id.server` queries, each from a fresh UDP socket (a new source port,
// so ECMP spreads them over the PoPs), to each given anycast address. Runs inside the client
// namespace; prints one JSON line per query: {"t": epoch ms, "fam": 4|6, "ok": bool, "id": "popa.lab"}.
// Bounded: stops after --count rounds or when stdin closes.
//   node stream.mjs --interval 50 --timeout 500 --count 1200 198.51.100.53 2001:db8:53::53
// With `--txt NAME` it asks `NAME IN TXT` instead, with the EDNS NSID option (RFC 5001), and prints
// {"t", "fam", "ok", "id": the NSID (the PoP's identity), "txt": the first TXT string}.
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
const txtAt = args.indexOf('--txt');
const txtName = txtAt < 0 ? null : args.splice(txtAt, 2)[1];
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

// NAME IN TXT with an OPT record asking for the NSID: header, question, OPT (root, type 41, size 1232,
// rdlen 4, option 3 with no data).
function txtQuery(id) {
  const labels = txtName.replace(/\.$/, '').split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const qname = Buffer.concat([...labels, Buffer.from([0])]);
  const tail = Buffer.from([0, 16, 0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 4, 0, 3, 0, 0]);
  const b = Buffer.concat([Buffer.alloc(12), qname, tail]);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(1, 4);
  b.writeUInt16BE(1, 10);
  return b;
}
function skipName(m, o) {
  while (o < m.length) {
    const l = m[o];
    if (l === 0) return o + 1;
    if ((l & 0xc0) === 0xc0) return o + 2;
    o += l + 1;
  }
  return m.length;
}
/** {id: NSID, txt: first TXT string of the answer} of a response, or null when it has no answer. */
function txtAnswer(m) {
  const an = m.readUInt16BE(6);
  const ns = m.readUInt16BE(8);
  const ar = m.readUInt16BE(10);
  let o = skipName(m, 12) + 4;
  let txt = null;
  let id = null;
  for (let i = 0; i < an + ns + ar && o + 10 <= m.length; i++) {
    o = skipName(m, o);
    const type = m.readUInt16BE(o);
    const len = m.readUInt16BE(o + 8);
    const rd = o + 10;
    if (i < an && type === 16 && txt === null) txt = m.subarray(rd + 1, rd + 1 + m[rd]).toString();
    if (i >= an + ns && type === 41) {
      for (let p = rd; p + 4 <= rd + len; ) {
        const code = m.readUInt16BE(p);
        const olen = m.readUInt16BE(p + 2);
        if (code === 3) id = m.subarray(p + 4, p + 4 + olen).toString();
        p += 4 + olen;
      }
    }
    o = rd + len;
  }
  return txt === null ? null : { id, txt };
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
    process.stdout.write(`${JSON.stringify({ t, fam, ok, id: who?.id ?? who, txt: who?.txt })}\n`);
  };
  const timer = setTimeout(() => finish(false, null), timeout);
  s.on('error', () => finish(false, null));
  s.on('message', (m) => {
    if (m.readUInt16BE(0) !== id) return;
    const who = txtName ? txtAnswer(m) : identity(m);
    finish(who !== null && (m[3] & 0xf) === 0, who);
  });
  s.send(txtName ? txtQuery(id) : query(id), 53, target);
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
