/**
 * RFC 2136 updates with `popdns serve --workers N`: every worker takes UPDATEs (nsupdate over UDP
 * from fresh source ports and over separate TCP connections, which node:cluster hands to the workers
 * in turn) and one writer applies them in arrival order. Checked: each update's prerequisites
 * (RFC 2136 §2.4, value-dependent) see the update acknowledged just before it; after each NOERROR,
 * queries over fresh UDP ports and fresh TCP connections (so every worker) all see the change; a
 * kill -9 of the writer (worker 0) while an update is on its way loses no acknowledged update, the
 * other worker takes over and NOTIFY still goes out; a kill -9 of the whole server after NOERROR and
 * a restart keep them all (journal). Two workers, not more: each costs seconds to start on a loaded
 * machine.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import packet from 'dns-packet';
import { queryTcp, queryUdp } from '../helpers/dns.js';
import { needTool, plainEnv, type Proc, startProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const OPS = Buffer.from('ops-key-for-popdns-update-tests!').toString('base64');
const ops = `hmac-sha256:ops.example.com:${OPS}`;
const ZONE = `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
n TXT "0"
`;

/** A port in this suite's range (22000-22999) free for UDP and TCP on 127.0.0.1. */
async function rangePort(): Promise<number> {
  for (let i = 0; i < 100; i++) {
    const port = 22100 + Math.floor(Math.random() * 900);
    const tcp = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (!tcp) continue;
    const udp = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (udp) return port;
  }
  throw new Error('no free port in 22100-22999');
}

interface Setup {
  config: string;
  port: number;
}

async function setup(tt: Test, notifyPort?: number): Promise<Setup> {
  const dir = tmpDir(tt, 'popdns-update-workers-');
  mkdirSync(join(dir, 'zones'));
  writeFileSync(join(dir, 'zones', 'example.com.zone'), ZONE);
  const port = await rangePort();
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    `zones: ${join(dir, 'zones')}
listen: ["127.0.0.1:${port}"]
data-dir: ${join(dir, 'data')}
control: off
drain: 0
tsig-keys:
  ops.example.com: { algorithm: hmac-sha256, secret: "${OPS}" }
updates:
  example.com:
    - { key: ops.example.com }
${notifyPort ? `transfer:\n  notify:\n    - { to: "127.0.0.1:${notifyPort}" }\n` : ''}`,
  );
  return { config, port };
}

function start(tt: Test, s: Setup, workers: number): Promise<Proc> {
  return startProcess(
    tt,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', s.config, '--workers', String(workers)],
    (o) => o.includes('ready:'),
    60000,
  );
}

/** nsupdate (TCP with `tcp`), bounded: its exit code and output. Each run uses a fresh source port. */
function nsupdate(s: Setup, lines: string[], tcp: boolean): Promise<{ code: number; out: string }> {
  const input = [`server 127.0.0.1 ${s.port}`, 'zone example.com', ...lines, 'send', ''].join('\n');
  return new Promise((resolve) => {
    const c = spawn('nsupdate', [...(tcp ? ['-v'] : []), '-t', '6', '-u', '2', '-y', ops], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: plainEnv(),
    });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), 20000);
    c.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, out });
    });
    c.stdin.end(input);
  });
}

/** The A records of `name` as seen over a fresh UDP socket, or over a fresh TCP connection. */
async function a(s: Setup, name: string, tcp: boolean): Promise<string[]> {
  const r = tcp ? await queryTcp(s.port, name, 'A') : await queryUdp(s.port, name, 'A');
  return (r.answers ?? []).flatMap((x) => (x.type === 'A' ? [x.data] : []));
}

async function txt(s: Setup, name: string, tcp: boolean): Promise<string[]> {
  const r = tcp ? await queryTcp(s.port, name, 'TXT') : await queryUdp(s.port, name, 'TXT');
  return (r.answers ?? []).flatMap((x) =>
    x.type === 'TXT' ? [(Array.isArray(x.data) ? x.data : [x.data]).map((b) => b.toString()).join('')] : [],
  );
}

/** Worker PIDs of a primary by their POPDNS_WORKER number (read from /proc). */
function workerPids(primary: number): Map<number, number> {
  const out = new Map<number, number>();
  const r = spawnSync('pgrep', ['-P', String(primary)], { encoding: 'utf8' });
  for (const line of r.stdout.split('\n')) {
    const pid = Number(line.trim());
    if (!pid) continue;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      const w = env.find((e) => e.startsWith('POPDNS_WORKER='));
      if (w) out.set(Number(w.slice('POPDNS_WORKER='.length)), pid);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitGone(pids: number[]): Promise<void> {
  const until = Date.now() + 10000;
  while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
}

t.test(
  '--workers 2: one writer in arrival order, every worker sees NOERROR, kill -9 loses nothing',
  async (tt) => {
    if (!needTool(tt, 'nsupdate', 'bind9-dnsutils')) return;
    // NOTIFY (RFC 1996) after each update, from worker 0 and, once it died, from the primary.
    const notifyPort = await rangePort();
    const notified: number[] = [];
    const sock = createSocket('udp4');
    sock.on('message', (m, r) => {
      const soa = packet.decode(m).answers?.find((x) => x.type === 'SOA');
      if (soa?.type === 'SOA') notified.push(soa.data.serial ?? 0);
      const ack = Buffer.from(m);
      ack[2] = ack[2]! | 0x80;
      sock.send(ack, r.port, r.address);
    });
    await new Promise<void>((r) => sock.bind(notifyPort, '127.0.0.1', () => r()));
    tt.teardown(() => sock.close());
    const s = await setup(tt, notifyPort);
    let p = await start(tt, s, 2);
    const primary = p.child.pid!;
    const pids = workerPids(primary);
    tt.equal(pids.size, 2, 'two workers');

    // 1. A chain: each update's prerequisites hold only if the one acknowledged before it is applied
    // (value-dependent RRset exists, name not in use: RFC 2136 §2.4.2, §2.4.5).
    const rounds = 6;
    for (let i = 1; i <= rounds; i++) {
      const r = await nsupdate(
        s,
        [
          `prereq yxrrset n.example.com. TXT "${i - 1}"`,
          `prereq nxdomain c${i}.example.com.`,
          'update delete n.example.com. TXT',
          `update add n.example.com. 60 TXT "${i}"`,
          `update add c${i}.example.com. 60 A 192.0.2.${i}`,
        ],
        i % 2 === 0,
      );
      tt.equal(r.code, 0, `update ${i} (${i % 2 === 0 ? 'TCP' : 'UDP'}): NOERROR ${r.out}`);
      // Right after NOERROR: fresh UDP sockets and two fresh TCP connections (node:cluster deals
      // connections to the workers in turn), all see the change.
      const seen = await Promise.all([
        a(s, `c${i}.example.com`, false),
        a(s, `c${i}.example.com`, false),
        a(s, `c${i}.example.com`, true),
        a(s, `c${i}.example.com`, true),
        txt(s, 'n.example.com', true),
        txt(s, 'n.example.com', true),
      ]);
      const want = [`192.0.2.${i}`];
      tt.same(seen.slice(0, 4), [want, want, want, want], `c${i} at every worker`);
      tt.same(seen.slice(4), [[String(i)], [String(i)]], `n TXT "${i}" at every worker`);
    }
    // A prerequisite the chain made false: YXDOMAIN, nothing applied.
    let r = await nsupdate(
      s,
      ['prereq nxdomain c1.example.com.', 'update add z.example.com. 60 A 192.0.2.99'],
      true,
    );
    tt.match(r.out, /YXDOMAIN/);
    tt.same(await a(s, 'z.example.com', true), []);
    // One writer: each serial once, in order (the update log lines).
    const serials = [...p.output().matchAll(/result=NOERROR .*serial=(\d+)/g)].map((m) => Number(m[1]));
    tt.same(
      serials,
      Array.from({ length: rounds }, (_x, k) => 8 + k),
      'serials 8.. in arrival order',
    );

    // 2. kill -9 of the writer (worker 0) while an update is on its way: worker 1 takes over.
    const acked: number[] = [];
    const run = async (i: number, kill?: number): Promise<void> => {
      const pending = nsupdate(s, [`update add k${i}.example.com. 60 A 192.0.2.${i}`], i % 2 === 0);
      if (kill !== undefined) {
        await new Promise((res) => setTimeout(res, 30));
        process.kill(pids.get(kill)!, 'SIGKILL');
      }
      if ((await pending).code === 0) acked.push(i);
    };
    await run(1);
    await run(2, 0);
    for (let i = 3; i <= 5; i++) await run(i);
    tt.ok(acked.length >= 4, `most updates acknowledged (${acked.join(' ')})`);
    tt.ok(
      acked.some((i) => i > 2),
      'updates go on after the writer died',
    );
    for (const i of acked) {
      const seen = await Promise.all([a(s, `k${i}.example.com`, false), a(s, `k${i}.example.com`, true)]);
      tt.same(seen, [[`192.0.2.${i}`], [`192.0.2.${i}`]], `acknowledged k${i} served`);
    }
    // The serial now served went out in a NOTIFY (sent by the primary: worker 0 is gone).
    const soa = (await queryTcp(s.port, 'example.com', 'SOA')).answers?.find((x) => x.type === 'SOA');
    const serial = soa?.type === 'SOA' ? (soa.data.serial ?? 0) : 0;
    tt.ok(serial >= 7 + rounds + acked.length, `serial ${serial}`);
    const until = Date.now() + 10000;
    while (!notified.includes(serial) && Date.now() < until) await new Promise((res) => setTimeout(res, 100));
    tt.ok(notified.includes(serial), `NOTIFY for serial ${serial} (got ${notified.join(' ')})`);

    // 3. kill -9 of the whole server right after a NOERROR, and a restart: everything acknowledged is there.
    r = await nsupdate(s, ['update add last.example.com. 60 A 192.0.2.200'], false);
    tt.equal(r.code, 0, `last update: ${r.out}`);
    const rest = [...workerPids(primary).values()];
    p.child.kill('SIGKILL');
    await new Promise((res) => (p.child as ChildProcess).once('exit', res));
    await waitGone(rest);
    p = await start(tt, s, 2);
    tt.same(await a(s, 'last.example.com', false), ['192.0.2.200'], 'last update survives kill -9');
    tt.same(await txt(s, 'n.example.com', true), [String(rounds)], "the chain's last TXT");
    for (const i of acked)
      tt.same(await a(s, `k${i}.example.com`, true), [`192.0.2.${i}`], `k${i} after restart`);
  },
);
