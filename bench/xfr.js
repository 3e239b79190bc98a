// @ts-check
/**
 * `npm run bench:xfr`: zone transfers, popdns beside Knot in the same run (issue 12's benchmark).
 *
 *   1. AXFR out of the 1M-record zone into a minimal client (this script, reading the stream and
 *      walking every record): wall time, server CPU-s, server peak RSS during the transfer.
 *   2. IXFR of a 10-record change to 20 concurrent clients asking from the old serial.
 *   3. Secondary intake: popdns, then Knot, as secondary of one Knot primary, taking in the 1M zone by
 *      AXFR: time from start to the first answer from the new zone, CPU-s, peak RSS.
 *   4. popdns answering dnsperf (UDP) while 3 AXFRs of the 1M zone run, against without transfers.
 *
 * Servers are pinned to CPU 0, the client side (this script, dnsperf, the Knot primary of part 3) to
 * CPU 1; popdns and Knot alternate round by round (A B A B) so a change in the machine's load hits both.
 * Everything binds 127.0.0.81–.89 (BENCH_XFR_NET) on ports 27100–27999 (BENCH_PORT_BASE); every process is started and stopped by PID
 * (SIGKILL on exit). The whole run is bounded (BENCH_XFR_DEADLINE, default 600 s): parts not reached
 * by then are skipped and said so.
 *
 * Env: BENCH_PORT_BASE, BENCH_XFR_NET (see below; part 3 only binds in BENCH_XFR_NET), BENCH_XFR_RECORDS (default 1000000), BENCH_XFR_ROUNDS (default 2), BENCH_XFR_PARTS (default
 * "axfr,ixfr,secondary,queries"), BENCH_XFR_PROF=1 (popdns with --cpu-prof into bench/gen/prof/),
 * BENCH_SECONDS (dnsperf seconds per round of part 4, default 5).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { bigZone, ORIGIN, queryFile, realisticZone } from './gen.js';
import { CORES, fmt, has, memory, MiB, parseDnsperf, pin, resetPeak, tree, workDir } from './lib.js';

const RECORDS = Number(process.env.BENCH_XFR_RECORDS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_XFR_ROUNDS ?? 2);
const PARTS = new Set((process.env.BENCH_XFR_PARTS ?? 'axfr,ixfr,secondary,queries').split(','));
const PROF = process.env.BENCH_XFR_PROF === '1';
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const DEADLINE = Date.now() + Number(process.env.BENCH_XFR_DEADLINE ?? 600) * 1000;
/** Another build's dist/cli.js (e.g. a checkout of the previous commit): parts 1 and 3 run it too, as "popdns-base". */
const BASELINE = process.env.BENCH_XFR_BASELINE ?? '';
/** The IXFR part's zone is smaller: reloading the 1M zone twice per round would not fit the time bound. */
const IXFR_RECORDS = Number(process.env.BENCH_XFR_IXFR_RECORDS ?? 100_000);
const ZONE = 'big.test.';
const LAST = `h${RECORDS - 1}.${ZONE}`;

const work = workDir('popdns-bench-xfr-');
/** Ports and addresses, overridable so two runs can share the machine: BENCH_PORT_BASE (a random
 * start in [base, base+400)), BENCH_XFR_NET (the first three octets of the 127/8 addresses used). */
const PORT_BASE = Number(process.env.BENCH_PORT_BASE ?? 27100);
const NET = process.env.BENCH_XFR_NET ?? '127.0.0';
const addr = (last) => `${NET}.${last}`;
let nextPort = PORT_BASE + Math.floor(Math.random() * 400);
const port = () => nextPort++;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (s) => process.stderr.write(`${s}\n`);
const left = () => (DEADLINE - Date.now()) / 1000;

// ---- processes -------------------------------------------------------------------------------------

/** @type {Set<import('node:child_process').ChildProcess>} */
const mine = new Set();
process.on('exit', () => {
  for (const c of mine) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/**
 * @typedef {{ kind: string, pid: number, host: string, port: number, out: () => string,
 *   stop: () => Promise<void>, t0: number }} Srv
 */

/** Spawns a server pinned to `cpu`; output (stdout + stderr) kept for log checks. */
function spawnServer(kind, host, p, cmd, args, cpu = 0) {
  const [c, a] = pin(cpu, cmd, args);
  const t0 = performance.now();
  const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
  mine.add(child);
  let out = '';
  const keep = (d) => {
    out += d;
    if (out.length > 1 << 20) out = out.slice(-(1 << 19));
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const stop = () =>
    new Promise((done) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        mine.delete(child);
        return done(undefined);
      }
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        mine.delete(child);
        done(undefined);
      });
      child.kill('SIGTERM');
    });
  /** @type {Srv & { child: import('node:child_process').ChildProcess }} */
  const s = { kind, pid: child.pid ?? 0, host, port: p, out: () => out, stop, t0, child };
  return s;
}

/** A query for `name`/`type` as bytes (class IN, no EDNS). */
function query(name, type, id = 0x4242) {
  const labels = name.split('.').filter(Boolean);
  return Buffer.concat([
    Buffer.from([id >> 8, id & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, type >> 8, type & 255, 0, 1]),
  ]);
}

/** One UDP query; { rcode, aa, an } or null after 300 ms. */
function ask(host, p, name, type) {
  return new Promise((done) => {
    const s = createSocket('udp4');
    const finish = (v) => {
      clearTimeout(timer);
      s.close();
      done(v);
    };
    const timer = setTimeout(() => finish(null), 300);
    s.on('error', () => finish(null));
    s.on('message', (m) =>
      finish(m.length >= 12 ? { rcode: m[3] & 15, aa: (m[2] & 4) !== 0, an: m.readUInt16BE(6) } : null),
    );
    s.send(query(name, type), p, host);
  });
}

/** Waits (bounded) until the server answers `name`/`type` with NOERROR, AA and data; seconds since spawn. */
async function answering(s, name, type, timeoutSec) {
  const end = Date.now() + timeoutSec * 1000;
  for (;;) {
    const c = /** @type {any} */ (s).child;
    if (c && c.exitCode !== null) throw new Error(`${s.kind} exited: ${s.out().slice(-800)}`);
    const r = await ask(s.host, s.port, name, type);
    if (r && r.rcode === 0 && r.aa && r.an > 0) return (performance.now() - s.t0) / 1000;
    if (Date.now() > end) throw new Error(`${s.kind} gave no answer for ${name} within ${timeoutSec} s`);
    await sleep(25);
  }
}

async function waitFor(check, timeoutSec, what) {
  const end = Date.now() + timeoutSec * 1000;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutSec} s waiting for ${what}`);
    await sleep(50);
  }
}

function startPopdns(host, zoneDir, extraYaml, tag, cli = 'dist/cli.js') {
  const dir = join(work, `popdns-${tag}-${nextPort}`);
  mkdirSync(dir, { recursive: true });
  const p = port();
  writeFileSync(
    join(dir, 'popdns.yaml'),
    [`data-dir: ${join(dir, 'data')}`, `control: ${join(dir, 'ctl.sock')}`, extraYaml]
      .filter(Boolean)
      .join('\n') + '\n',
  );
  const prof = PROF
    ? [`--cpu-prof`, `--cpu-prof-dir=${resolve('bench/gen/prof')}`, `--cpu-prof-name=${tag}-${p}.cpuprofile`]
    : [];
  const args = [
    ...prof,
    cli,
    'serve',
    '--zones',
    zoneDir,
    '--listen',
    `${host}:${p}`,
    '--metrics',
    'off',
    '--workers',
    '1',
    '--config',
    join(dir, 'popdns.yaml'),
  ];
  return Object.assign(spawnServer('popdns', host, p, process.execPath, args), { dir });
}

function knotConf(dir, host, p, lines, serverLines = []) {
  mkdirSync(join(dir, 'db'), { recursive: true });
  writeFileSync(
    join(dir, 'knot.conf'),
    [
      'server:',
      `  listen: ${host}@${p}`,
      `  rundir: ${dir}`,
      '  udp-workers: 1',
      '  tcp-workers: 1',
      '  background-workers: 1',
      ...serverLines,
      'database:',
      `  storage: ${join(dir, 'db')}`,
      'log:',
      `  - target: ${join(dir, 'knot.log')}`,
      '    any: info',
      ...lines,
    ].join('\n') + '\n',
  );
  return join(dir, 'knot.conf');
}

/** Knot serving `zoneDir`'s big.test. file; `ixfr` computes differences on reload (for part 2). */
function startKnotPrimary(host, zoneDir, tag, cpu = 0, ixfr = false, ioTimeoutMs = 0) {
  const dir = join(work, `knot-${tag}-${nextPort}`);
  const p = port();
  const conf = knotConf(
    dir,
    host,
    p,
    [
      'acl:',
      '  - id: xfr',
      '    address: 127.0.0.0/8',
      '    action: transfer',
      'template:',
      '  - id: default',
      `    storage: ${zoneDir}`,
      '    semantic-checks: off',
      '    zonefile-sync: -1',
      `    zonefile-load: ${ixfr ? 'difference' : 'whole'}`,
      `    journal-content: ${ixfr ? 'changes' : 'none'}`,
      '    acl: xfr',
      'zone:',
      `  - domain: ${ZONE}`,
      `    file: ${ZONE}zone`,
    ],
    // Knot drops a TCP peer that does not read for tcp-io-timeout (500 ms): on a loaded machine a
    // secondary (popdns, or Knot) descheduled that long loses the transfer.
    ioTimeoutMs ? [`  tcp-io-timeout: ${ioTimeoutMs}`] : [],
  );
  return Object.assign(spawnServer('knot', host, p, 'knotd', ['-c', conf], cpu), { dir, conf });
}

// ---- the transfer client ---------------------------------------------------------------------------

/** Skips a (possibly compressed) name at `p`; returns the offset after it. */
function skipName(m, p) {
  for (;;) {
    const l = m[p];
    if (l === 0) return p + 1;
    if ((l & 0xc0) === 0xc0) return p + 2;
    p += l + 1;
  }
}

/**
 * Asks `host:p` for AXFR (or IXFR from `fromSerial`) over TCP and reads the stream to its closing SOA,
 * walking every record. Done when the zone's SOA with the first SOA's serial has been seen `endAt`
 * times (AXFR: 2; an IXFR of one changeset: 3; an up-to-date IXFR: 1 record). Bounded by `timeoutSec`.
 * @returns {Promise<{ ms: number, records: number, messages: number, bytes: number }>}
 */
function xfrClient(
  host,
  p,
  { fromSerial = null, endAt = 2, timeoutSec = 300, localAddress = addr(89) } = {},
) {
  const qtype = fromSerial === null ? 252 : 251;
  let msg = query(ZONE, qtype, 0x1000 + Math.floor(Math.random() * 0xe000));
  if (fromSerial !== null) {
    const soa = Buffer.alloc(2 + 10 + 1 + 1 + 20);
    soa.writeUInt16BE(0xc00c, 0); // the zone name in the question
    soa.writeUInt16BE(6, 2);
    soa.writeUInt16BE(1, 4);
    soa.writeUInt32BE(0, 6);
    soa.writeUInt16BE(1 + 1 + 20, 10);
    // mname = root, rname = root, serial and four timers
    soa[12] = 0;
    soa[13] = 0;
    soa.writeUInt32BE(fromSerial >>> 0, 14);
    msg = Buffer.concat([msg, soa]);
    msg.writeUInt16BE(1, 8); // NSCOUNT
  }
  return new Promise((done, fail) => {
    const t0 = performance.now();
    let buf = Buffer.alloc(0);
    let records = 0;
    let messages = 0;
    let bytes = 0;
    let serial = -1;
    let seen = 0;
    const sock = connect({ host, port: p, localAddress, noDelay: true });
    const timer = setTimeout(
      () => finish(new Error(`transfer from ${host}:${p} took over ${timeoutSec} s`)),
      timeoutSec * 1000,
    );
    const finish = (err) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) fail(err);
      else done({ ms: performance.now() - t0, records, messages, bytes });
    };
    sock.on('error', (e) => finish(e));
    sock.on('close', () => finish(new Error(`${host}:${p} closed the connection after ${records} records`)));
    sock.on('connect', () => {
      const f = Buffer.alloc(2);
      f.writeUInt16BE(msg.length);
      sock.write(Buffer.concat([f, msg]));
    });
    sock.on('data', (d) => {
      bytes += d.length;
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      let off = 0;
      while (buf.length - off >= 2) {
        const len = buf.readUInt16BE(off);
        if (buf.length - off - 2 < len) break;
        const m = buf.subarray(off + 2, off + 2 + len);
        off += 2 + len;
        messages++;
        if ((m[3] & 15) !== 0) return finish(new Error(`rcode ${m[3] & 15} from ${host}:${p}`));
        let q = 12;
        for (let i = m.readUInt16BE(4); i > 0; i--) q = skipName(m, q) + 4;
        const an = m.readUInt16BE(6);
        for (let i = 0; i < an; i++) {
          q = skipName(m, q);
          const type = m.readUInt16BE(q);
          const rdlen = m.readUInt16BE(q + 8);
          if (type === 6) {
            const rd = skipName(m, skipName(m, q + 10));
            const s = m.readUInt32BE(rd);
            if (serial < 0) serial = s;
            if (s === serial) seen++;
          }
          q += 10 + rdlen;
          records++;
          if (seen >= endAt) return finish(null);
        }
        if (qtype === 251 && messages === 1 && an === 1 && seen === 1 && endAt > 1) {
          // One SOA alone: up to date (RFC 1995 §2).
          return finish(null);
        }
      }
      buf = off < buf.length ? buf.subarray(off) : Buffer.alloc(0);
    });
  });
}

// ---- measuring -------------------------------------------------------------------------------------

/** CPU-s of one process (utime + stime). */
const cpuOf = (pid) => tree(pid).cpu;

/** Runs `fn` while measuring the server `s`: wall ms, its CPU-s and its peak RSS (VmHWM reset first). */
async function measured(s, fn) {
  const peakReset = resetPeak(s.pid);
  const rss0 = memory(s.pid).rss;
  const c0 = cpuOf(s.pid);
  const t0 = performance.now();
  const r = await fn();
  const ms = performance.now() - t0;
  const c1 = cpuOf(s.pid);
  const m = memory(s.pid);
  return { r, ms, cpu: c1 - c0, rss0, peak: peakReset ? m.hwm : m.rss, peakReset };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : NaN;
};

/** The servers of a round, alternating order round by round (A B, B A, …). */
function kindsOf(round) {
  const kinds = ['popdns', 'knot', ...(BASELINE ? ['popdns-base'] : [])];
  return round % 2 ? kinds : kinds.reverse();
}
const cliOf = (kind) => (kind === 'popdns-base' ? BASELINE : 'dist/cli.js');
const emptyRes = () => ({ ms: [], cpu: [], peak: [], rss0: [] });

/** @type {string[]} */
const report = [];
const out = (s = '') => report.push(s);

// ---- part 1: AXFR out ------------------------------------------------------------------------------

async function axfrOut(zoneDir) {
  out(`### AXFR out of the ${fmt(RECORDS)}-record zone (client: this script on CPU 1, servers on CPU 0)`);
  out('');
  out(
    '| round | server | wall (s) | server CPU-s | RSS before (MiB) | peak RSS during (MiB) | records | messages | MB |',
  );
  out('|---|---|---:|---:|---:|---:|---:|---:|---:|');
  /** @type {Record<string, {ms:number[], cpu:number[], peak:number[], rss0:number[]}>} */
  const res = { popdns: emptyRes(), knot: emptyRes(), 'popdns-base': emptyRes() };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const kind of kindsOf(round)) {
      if (left() < 60) return log('  axfr: deadline near, skipping the rest');
      const s =
        kind !== 'knot'
          ? startPopdns(
              addr(81),
              zoneDir,
              'transfer:\n  allow:\n    - { from: 127.0.0.0/8 }',
              'axfr',
              cliOf(kind),
            )
          : startKnotPrimary(addr(82), zoneDir, 'axfr');
      try {
        const ready = await answering(s, LAST, 1, 180);
        await sleep(500);
        const m = await measured(s, () => xfrClient(s.host, s.port, { timeoutSec: Math.min(300, left()) }));
        const e = res[kind];
        e.ms.push(m.ms);
        e.cpu.push(m.cpu);
        e.peak.push(m.peak);
        e.rss0.push(m.rss0);
        log(
          `  axfr round ${round} ${kind}: loaded in ${fmt(ready, 1)} s; transfer ${fmt(m.ms / 1000, 2)} s, ${fmt(m.cpu, 2)} CPU-s, RSS ${fmt(MiB(m.rss0))} → peak ${fmt(MiB(m.peak))} MiB, ${fmt(m.r.records)} records in ${fmt(m.r.messages)} messages`,
        );
        out(
          `| ${round} | ${kind} | ${fmt(m.ms / 1000, 2)} | ${fmt(m.cpu, 2)} | ${fmt(MiB(m.rss0))} | ${fmt(MiB(m.peak))} | ${fmt(m.r.records)} | ${fmt(m.r.messages)} | ${fmt(m.r.bytes / 1e6, 1)} |`,
        );
      } finally {
        await s.stop();
      }
    }
  }
  ratios(res, 'AXFR out');
}

function ratios(res, what, growth = true) {
  const r = (a, b) => fmt(median(a) / median(b), 2);
  const line = (x, y, nx, ny) =>
    `${what}, medians ${nx} / ${ny}: wall **${r(x.ms, y.ms)}×**, server CPU-s **${r(x.cpu, y.cpu)}×**, peak RSS **${r(x.peak, y.peak)}×**` +
    (growth
      ? ` (growth during it: ${nx} +${fmt(MiB(median(x.peak) - median(x.rss0)))} MiB, ${ny} +${fmt(MiB(median(y.peak) - median(y.rss0)))} MiB)`
      : '') +
    '.';
  const p = res.popdns;
  const k = res.knot;
  const base = res['popdns-base'];
  out('');
  if (p.ms.length && k.ms.length) out(line(p, k, 'popdns', 'Knot'));
  if (base?.ms.length && k.ms.length) out(`\n${line(base, k, 'popdns-base', 'Knot')}`);
  if (base?.ms.length && p.ms.length) out(`\n${line(p, base, 'popdns', 'popdns-base')}`);
  out('');
}

// ---- part 2: IXFR of a 10-record change to 20 clients ---------------------------------------------

async function ixfrOut(zoneDir, records) {
  const last = `h${records - 1}.${ZONE}`;
  const CLIENTS = 20;
  const REPEAT = 5;
  out(
    `### IXFR of a 10-record change (serial 1 → 2) in a ${fmt(records)}-record zone to ${CLIENTS} concurrent clients, ${REPEAT} times`,
  );
  out('');
  out(
    '| round | server | wall per wave of 20 (ms, median) | server CPU-s for all waves | records per client |',
  );
  out('|---|---|---:|---:|---:|');
  const res = {
    popdns: { ms: [], cpu: [], peak: [], rss0: [] },
    knot: { ms: [], cpu: [], peak: [], rss0: [] },
    'popdns-base': { ms: [], cpu: [], peak: [], rss0: [] },
  };
  for (let round = 1; round <= ROUNDS; round++) {
    for (const kind of kindsOf(round)) {
      if (left() < 60) return log('  ixfr: deadline near, skipping the rest');
      // A private copy of the zone: this round edits it.
      const dir = join(work, `ixfr-${kind}-${round}`);
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${ZONE}zone`);
      writeFileSync(file, readFileSync(join(zoneDir, `${ZONE}zone`)));
      const s =
        kind !== 'knot'
          ? startPopdns(
              addr(83),
              dir,
              'transfer:\n  allow:\n    - { from: 127.0.0.0/8 }',
              'ixfr',
              cliOf(kind),
            )
          : startKnotPrimary(addr(84), dir, 'ixfr', 0, true);
      try {
        await answering(s, last, 1, 180);
        // 10 records change: 5 addresses edited (5 deleted + 5 added) and the serial.
        let text = readFileSync(file, 'latin1');
        text = text.replace(' SOA ns1 hostmaster 1 ', ' SOA ns1 hostmaster 2 ');
        for (let i = 0; i < 5; i++) {
          const n = Math.floor(((i + 1) * records) / 7);
          text = text.replace(new RegExp(`\nh${n} A [0-9.]+\n`), `\nh${n} A 192.0.2.${100 + i}\n`);
        }
        writeFileSync(file, text, 'latin1');
        const k0 = performance.now();
        if (kind !== 'knot') {
          s.child.kill('SIGHUP');
          await waitFor(() => /in the IXFR history/.test(s.out()), 120, 'popdns to record the changeset');
        } else {
          execFileSync('knotc', ['-c', s.conf, 'zone-reload', ZONE], { stdio: 'ignore', timeout: 30_000 });
        }
        await waitFor(
          async () => {
            const r = await ask(s.host, s.port, `h${Math.floor(records / 7)}.${ZONE}`, 1);
            return r !== null;
          },
          30,
          'an answer',
        );
        await waitFor(() => soaSerial(s.host, s.port).then((x) => x === 2), 120, 'serial 2');
        log(
          `  ixfr round ${round} ${kind}: reload with the change took ${fmt((performance.now() - k0) / 1000, 1)} s`,
        );
        await sleep(300);
        const waves = [];
        let recs = 0;
        const m = await measured(s, async () => {
          for (let w = 0; w < REPEAT; w++) {
            const t = performance.now();
            const all = await Promise.all(
              Array.from({ length: CLIENTS }, () =>
                xfrClient(s.host, s.port, { fromSerial: 1, endAt: 3, timeoutSec: 60 }),
              ),
            );
            waves.push(performance.now() - t);
            recs = all[0].records;
          }
        });
        res[kind].ms.push(median(waves));
        res[kind].cpu.push(m.cpu);
        log(
          `  ixfr round ${round} ${kind}: ${fmt(median(waves), 1)} ms per wave, ${fmt(m.cpu, 2)} CPU-s, ${recs} records each`,
        );
        out(`| ${round} | ${kind} | ${fmt(median(waves), 1)} | ${fmt(m.cpu, 2)} | ${recs} |`);
      } finally {
        await s.stop();
      }
    }
  }
  res.popdns.peak = [];
  res.knot.peak = [];
  const p = res.popdns;
  const k = res.knot;
  if (p.ms.length && k.ms.length)
    out(
      `\nIXFR, medians popdns / Knot: wall per wave **${fmt(median(p.ms) / median(k.ms), 2)}×**, server CPU-s **${fmt(median(p.cpu) / Math.max(0.01, median(k.cpu)), 2)}×** (CPU-s below 0.05 are at /proc's 10 ms resolution).\n`,
    );
  const b = res['popdns-base'];
  if (b.ms.length && k.ms.length)
    out(
      `popdns-base / Knot: wall per wave ${fmt(median(b.ms) / median(k.ms), 2)}×, server CPU-s ${fmt(median(b.cpu) / Math.max(0.01, median(k.cpu)), 2)}×.\n`,
    );
}

/** The SOA serial the server answers over UDP, or null. */
function soaSerial(host, p) {
  return new Promise((done) => {
    const s = createSocket('udp4');
    const finish = (v) => {
      clearTimeout(timer);
      s.close();
      done(v);
    };
    const timer = setTimeout(() => finish(null), 300);
    s.on('error', () => finish(null));
    s.on('message', (m) => {
      if (m.length < 12 || m.readUInt16BE(6) < 1) return finish(null);
      let q = skipName(m, 12) + 4;
      q = skipName(m, q);
      if (m.readUInt16BE(q) !== 6) return finish(null);
      finish(m.readUInt32BE(skipName(m, skipName(m, q + 10))));
    });
    s.send(query(ZONE, 6), p, host);
  });
}

// ---- part 3: secondary intake ------------------------------------------------------------------------

async function secondaryIn(zoneDir) {
  out(
    `### Secondary taking in the ${fmt(RECORDS)}-record zone by AXFR from a Knot primary (primary on CPU 1, secondary on CPU 0)`,
  );
  out('');
  out(
    '| round | secondary | start → first answer (s) | secondary CPU-s | peak RSS (MiB) | RSS after (MiB) |',
  );
  out('|---|---|---:|---:|---:|---:|');
  const primary = startKnotPrimary(addr(85), zoneDir, 'secprimary', 1, false, 30_000);
  /** @type {Record<string, {ms:number[], cpu:number[], peak:number[], rss0:number[]}>} */
  const res = { popdns: emptyRes(), knot: emptyRes(), 'popdns-base': emptyRes() };
  try {
    await answering(primary, LAST, 1, 180);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of kindsOf(round)) {
        if (left() < 60) return log('  secondary: deadline near, skipping the rest');
        let s;
        if (kind !== 'knot') {
          const empty = join(work, `empty-${round}`);
          mkdirSync(empty, { recursive: true });
          s = startPopdns(
            addr(86),
            empty,
            `secondaries:\n  - { zone: ${ZONE}, primaries: ["${primary.host}:${primary.port}"] }`,
            'secondary',
            cliOf(kind),
          );
        } else {
          const dir = join(work, `knot-sec-${round}`);
          const p = port();
          mkdirSync(join(dir, 'zones'), { recursive: true });
          const conf = knotConf(dir, addr(87), p, [
            'remote:',
            '  - id: primary',
            `    address: ${primary.host}@${primary.port}`,
            'template:',
            '  - id: default',
            `    storage: ${join(dir, 'zones')}`,
            '    semantic-checks: off',
            // popdns writes each version to data-dir before serving it; Knot flushes the zone file at once.
            '    zonefile-sync: 0',
            '    zonefile-load: none',
            '    journal-content: none',
            '    master: primary',
            'zone:',
            `  - domain: ${ZONE}`,
          ]);
          s = spawnServer('knot', addr(87), p, 'knotd', ['-c', conf], 0);
        }
        try {
          const ready = await answering(s, LAST, 1, Math.min(300, left()));
          const t = tree(s.pid);
          res[kind].ms.push(ready * 1000);
          res[kind].cpu.push(t.cpu);
          res[kind].peak.push(t.hwm);
          res[kind].rss0.push(0);
          const line = kind !== 'knot' ? (/xfr in zone .*/.exec(s.out())?.[0] ?? '') : '';
          log(
            `  secondary round ${round} ${kind}: ${fmt(ready, 2)} s, ${fmt(t.cpu, 2)} CPU-s, peak ${fmt(MiB(t.hwm))} MiB, RSS ${fmt(MiB(t.rss))} MiB ${line}`,
          );
          out(
            `| ${round} | ${kind} | ${fmt(ready, 2)} | ${fmt(t.cpu, 2)} | ${fmt(MiB(t.hwm))} | ${fmt(MiB(t.rss))} |`,
          );
        } finally {
          await s.stop();
        }
      }
    }
  } finally {
    await primary.stop();
  }
  ratios(res, 'Secondary intake (wall = start to first answer)', false);
}

// ---- part 4: queries while transfers run ---------------------------------------------------------

async function queriesDuringTransfers(zoneDir, queries) {
  out(
    `### popdns answering dnsperf (UDP, the bench query mix for bench.test.) with and without 3 concurrent ${fmt(RECORDS)}-record AXFRs`,
  );
  out('');
  out('| round | transfers | QPS | lost | AXFRs completed | server CPU-s | answers per server CPU-s |');
  out('|---|---|---:|---:|---:|---:|---:|');
  const s = startPopdns(addr(88), zoneDir, 'transfer:\n  allow:\n    - { from: 127.0.0.0/8 }', 'queries');
  const qps = { off: [], on: [] };
  /** Answers per server CPU-second (what the server can do per unit of its core, whoever else runs). */
  const perCpu = { off: [], on: [] };
  try {
    await answering(s, LAST, 1, 180);
    await answering(s, ORIGIN, 6, 30);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of round % 2 ? ['off', 'on'] : ['on', 'off']) {
        if (left() < SECONDS + 40) return log('  queries: deadline near, skipping the rest');
        let stop = false;
        let completed = 0;
        const loops =
          mode === 'on'
            ? Array.from({ length: 3 }, async () => {
                while (!stop) {
                  await xfrClient(s.host, s.port, { timeoutSec: SECONDS + 120 }).catch(() => {});
                  if (!stop) completed++;
                }
              })
            : [];
        if (mode === 'on') await sleep(300);
        const c0 = cpuOf(s.pid);
        const [c, a] = pin(1, 'dnsperf', [
          '-s',
          s.host,
          '-p',
          String(s.port),
          '-d',
          queries,
          '-l',
          String(SECONDS),
          '-t',
          '2',
          '-c',
          '1',
          '-q',
          '200',
        ]);
        const r = await new Promise((done, fail) => {
          const child = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
          mine.add(child);
          let text = '';
          child.stdout?.on('data', (d) => (text += d));
          const kill = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 30) * 1000);
          child.on('exit', () => {
            clearTimeout(kill);
            mine.delete(child);
            if (text) done(parseDnsperf(text));
            else fail(new Error('dnsperf gave no output'));
          });
        });
        const cpu = cpuOf(s.pid) - c0;
        stop = true;
        const during = completed;
        await Promise.all(loops);
        qps[mode].push(r.qps);
        perCpu[mode].push((r.qps * SECONDS) / Math.max(0.01, cpu));
        log(
          `  queries round ${round} transfers ${mode}: ${fmt(r.qps)} qps, lost ${r.lost}, ${during} AXFRs completed during the run`,
        );
        out(
          `| ${round} | ${mode === 'on' ? '3 AXFRs' : 'none'} | ${fmt(r.qps)} | ${fmt(r.lost)} | ${mode === 'on' ? during : ''} | ${fmt(cpu, 2)} | ${fmt((r.qps * SECONDS) / Math.max(0.01, cpu))} |`,
        );
      }
    }
  } finally {
    await s.stop();
  }
  if (qps.on.length && qps.off.length)
    out(
      `\nQueries answered while 3 AXFRs run: **${fmt((100 * median(qps.on)) / median(qps.off))}%** of the rate without transfers (medians); answers per server CPU-s with transfers ${fmt(median(perCpu.on))} (the transfers' CPU counted too), without ${fmt(median(perCpu.off))}.\n`,
    );
}

// ---- main ------------------------------------------------------------------------------------------

async function main() {
  if (!existsSync('dist/cli.js')) throw new Error('run `npm run build` first (from the repository root)');
  if (!has('knotd')) throw new Error('knotd is not installed (apt-get install knot knot-dnsutils)');
  if (CORES >= 2 && has('taskset'))
    execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });
  const zoneDir = join(work, 'zones');
  log(`bench:xfr: generating a ${fmt(RECORDS)}-record zone…`);
  await bigZone(zoneDir, RECORDS, false);
  realisticZone(zoneDir, 2000);
  const queries = join(work, 'queries.txt');
  queryFile(queries, 2000, 100_000);
  if (PROF) mkdirSync('bench/gen/prof', { recursive: true });
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  out(
    `bench:xfr — ${new Date().toISOString().slice(0, 16)}Z, ${CORES} cores, Node ${process.version}, load average at start ${load}, ${ROUNDS} rounds (popdns and Knot alternate)`,
  );
  out('');
  if (PARTS.has('axfr')) await axfrOut(zoneDir);
  if (PARTS.has('ixfr')) {
    const ixfrDir = join(work, 'ixfr-zone');
    await bigZone(ixfrDir, IXFR_RECORDS, false);
    await ixfrOut(ixfrDir, IXFR_RECORDS);
  }
  if (PARTS.has('secondary') && has('knotc')) await secondaryIn(zoneDir);
  if (PARTS.has('queries') && has('dnsperf')) await queriesDuringTransfers(zoneDir, queries);
  out(`load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  process.stdout.write(`${report.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stdout.write(`${report.join('\n')}\n`);
    process.stderr.write(`bench:xfr: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
