// @ts-check
/**
 * `npm run bench:dnssec`: what DNSSEC costs popdns, measured beside the reference tools.
 *
 * 1. Signing throughput: `popdns sign` against `ldns-signzone` and `dnssec-signzone` on the same zone
 *    (N A records, default 50,000) with the same ECDSAP256SHA256 key (made by `popdns keygen`: BIND's
 *    key-file format, which both tools read), NSEC. Signatures per second of wall time, whole command
 *    (start, parse, sign, write), median of rounds.
 * 2. Query throughput with DO=1 as a ratio of DO=0: popdns serving the bench zone signed, dnsperf with
 *    EDNS (-e) and with the DO bit (-D), interleaved rounds; answers per server CPU-second.
 *
 * Env: BENCH_SIGN_RECORDS (default 50000), BENCH_SECONDS (per dnsperf round, default 5),
 * BENCH_ROUNDS (default 3). Everything on 127.0.0.1; every process started is stopped by PID.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { bigZone, ORIGIN, queryFile, realisticZone } from './gen.js';
import {
  CORES,
  dnsperfArgs,
  fmt,
  has,
  median,
  parseDnsperf,
  pin,
  startServer,
  tree,
  workDir,
} from './lib.js';

const RECORDS = Number(process.env.BENCH_SIGN_RECORDS ?? 50_000);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const work = workDir('popdns-bench-dnssec-');

/** Signing commands run on every core unless BENCH_SIGN_PIN=1 (then on CPU 0 only, as before). */
const SIGN_PIN = process.env.BENCH_SIGN_PIN === '1';
/** `popdns sign --threads` values to run, each its own row (default 0,1,2: main thread, 1, 2 threads). */
const SIGN_THREADS = (process.env.BENCH_SIGN_THREADS ?? '0,1,2').split(',').filter((x) => x !== '');
/** Which peers to sign with beside popdns (default ldns-signzone,dnssec-signzone). */
const SIGN_PEERS = (process.env.BENCH_SIGN_PEERS ?? 'ldns-signzone,dnssec-signzone').split(',');
let cpuOf = 0;

/**
 * Seconds a command takes (wall clock), bounded at 600 s; its CPU seconds (user + system of the
 * process and its threads, from /usr/bin/time when installed) are left in `cpuOf`.
 */
function timed(cmd, args) {
  const useTime = existsSync('/usr/bin/time');
  const cpuFile = join(work, 'cpu.txt');
  const inner = useTime ? ['/usr/bin/time', ['-f', '%U %S', '-o', cpuFile, cmd, ...args]] : [cmd, args];
  const [c, a] = SIGN_PIN ? pin(0, inner[0], inner[1]) : inner;
  const t0 = process.hrtime.bigint();
  execFileSync(c, a, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  cpuOf = 0;
  if (useTime) {
    const [u, sy] = readFileSync(cpuFile, 'utf8').trim().split(/\s+/).slice(-2).map(Number);
    cpuOf = (u ?? 0) + (sy ?? 0);
  }
  return s;
}

/** The 1-minute load average. */
const load1 = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

const rrsigs = (file) => (readFileSync(file, 'utf8').match(/\sRRSIG\s/g) ?? []).length;

function keygen(dir, zone) {
  mkdirSync(dir, { recursive: true });
  execFileSync(process.execPath, ['dist/cli.js', 'keygen', zone, '--keys', dir], { stdio: 'ignore' });
  return readdirSync(dir)
    .find((f) => f.endsWith('.key'))
    ?.replace(/\.key$/, '');
}

async function signing() {
  const zdir = join(work, 'sign');
  await bigZone(zdir, RECORDS, false);
  const zoneFile = join(zdir, readdirSync(zdir).find((f) => f.endsWith('.zone')) ?? '');
  const origin = 'big.test';
  const keys = join(work, 'sign-keys');
  const base = keygen(keys, origin);
  if (!base) throw new Error('popdns keygen made no key');
  const nsec3 = process.env.BENCH_SIGN_NSEC3 === '1';
  const tools = SIGN_THREADS.map((n) => [
    `popdns sign --threads ${n}`,
    () => {
      const out = join(work, 'popdns.signed');
      const s = timed(process.execPath, [
        'dist/cli.js',
        'sign',
        zoneFile,
        '--keys',
        keys,
        '--out',
        out,
        '--threads',
        n,
        ...(nsec3 ? ['--nsec3'] : []),
      ]);
      return { s, cpu: cpuOf, sigs: rrsigs(out) };
    },
  ]);
  const baseline = process.env.BENCH_SIGN_BASELINE;
  if (baseline) {
    // Another build (PATH/dist/cli.js), e.g. the commit before this work, signing the same zone.
    tools.push([
      'popdns-base sign',
      () => {
        const out = join(work, 'base.signed');
        const s = timed(process.execPath, [
          baseline,
          'sign',
          zoneFile,
          '--keys',
          keys,
          '--out',
          out,
          ...(nsec3 ? ['--nsec3'] : []),
        ]);
        return { s, cpu: cpuOf, sigs: rrsigs(out) };
      },
    ]);
  }
  if (has('ldns-signzone') && SIGN_PEERS.includes('ldns-signzone')) {
    tools.push([
      'ldns-signzone',
      () => {
        const out = join(work, 'ldns.signed');
        // -o origin, -f output; NSEC (the default); the key by its base name (BIND format files).
        // -n: NSEC3 (no extra iterations, no salt, as popdns), when BENCH_SIGN_NSEC3=1.
        const s = timed('ldns-signzone', [
          ...(nsec3 ? ['-n', '-t', '0'] : []),
          '-o',
          `${origin}.`,
          '-f',
          out,
          zoneFile,
          join(keys, base),
        ]);
        return { s, cpu: cpuOf, sigs: rrsigs(out) };
      },
    ]);
  }
  if (has('dnssec-signzone') && SIGN_PEERS.includes('dnssec-signzone')) {
    tools.push([
      'dnssec-signzone',
      () => {
        const out = join(work, 'bind.signed');
        // -S: keys from -K; -z: the key is a CSK; -P: no post-sign verification (ldns and popdns do none).
        const s = timed('dnssec-signzone', [
          '-q',
          '-d',
          work, // its dsset- file goes to the work directory, not the checkout
          '-S',
          '-z',
          '-P',
          ...(nsec3 ? ['-3', '-'] : []), // NSEC3, no salt (iterations: BIND's default, 0)
          '-K',
          keys,
          '-o',
          `${origin}.`,
          '-f',
          out,
          zoneFile,
        ]);
        return { s, cpu: cpuOf, sigs: rrsigs(out) };
      },
    ]);
  }
  /** @type {Map<string, {s:number[], cpu:number[], load:number[], sigs:number}>} */
  const res = new Map();
  for (let r = 0; r < ROUNDS; r++) {
    // Alternate the order each round (A B C, C B A) so no tool always runs first.
    const order = r % 2 === 0 ? tools : [...tools].reverse();
    for (const [name, run] of order) {
      const load = load1();
      const { s, cpu, sigs } = /** @type {() => {s:number, cpu:number, sigs:number}} */ (run)();
      const e = res.get(/** @type {string} */ (name)) ?? { s: [], cpu: [], load: [], sigs };
      e.s.push(s);
      e.cpu.push(cpu);
      e.load.push(load);
      res.set(/** @type {string} */ (name), e);
      process.stderr.write(
        `  round ${r + 1}/${ROUNDS} ${name}: ${fmt(s, 2)} s wall, ${fmt(cpu, 2)} CPU-s, ${fmt(sigs)} RRSIGs, load ${load}\n`,
      );
    }
  }
  return res;
}

async function doRatio() {
  const zoneDir = join(work, 'zones');
  mkdirSync(zoneDir);
  realisticZone(zoneDir, 2000);
  const queries = join(work, 'queries.txt');
  queryFile(queries, 2000, 100_000);
  const keys = join(work, 'keys');
  keygen(keys, ORIGIN.replace(/\.$/, ''));
  /** @type {Record<string, {perCpu:number[], qps:number[], lost:number[]}>} */
  const res = { 'DO=0': { perCpu: [], qps: [], lost: [] }, 'DO=1': { perCpu: [], qps: [], lost: [] } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const label of /** @type {const} */ (['DO=0', 'DO=1'])) {
      const s = await startServer('popdns', zoneDir, { work, args: ['--keys', keys] });
      const before = tree(s.pid).cpu;
      const [c, a] = dnsperfArgs(s.port, queries, 'udp', SECONDS, 2, label === 'DO=1' ? ['-D'] : ['-e']);
      const d = parseDnsperf(execFileSync(c, a, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 }));
      const cpu = tree(s.pid).cpu - before;
      await s.stop();
      res[label].perCpu.push(cpu > 0 ? d.completed / cpu : 0);
      res[label].qps.push(d.qps);
      res[label].lost.push(d.lost);
      process.stderr.write(
        `  round ${r + 1}/${ROUNDS} ${label}: ${fmt(d.qps)} qps, ${fmt(cpu, 2)} cpu-s, lost ${d.lost}\n`,
      );
    }
  }
  return res;
}

async function main() {
  if (!existsSync('dist/cli.js')) throw new Error('run `npm run build` first');
  process.stderr.write(`bench:dnssec: ${CORES} cores, Node ${process.version}, ${ROUNDS} rounds\n`);
  const lines = [
    `popdns DNSSEC bench — ${new Date().toISOString().slice(0, 16)}Z, ${cpus()[0]?.model ?? 'cpu'} × ${CORES}, Node ${process.version}`,
    '',
    `Signing ${fmt(RECORDS)} A records (ECDSAP256SHA256 CSK, ${process.env.BENCH_SIGN_NSEC3 === '1' ? 'NSEC3' : 'NSEC'}; whole command, ${SIGN_PIN ? 'pinned to CPU 0' : `on ${CORES} cores`}, median of ${ROUNDS} interleaved rounds):`,
    '',
    '| signer | wall s | CPU-s | RRSIGs | signatures / CPU-s | ldns wall / this | this per CPU-s / ldns | load (1 min) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const sign = await signing();
  const ldns = sign.get('ldns-signzone');
  for (const [name, e] of sign) {
    const perCpu = e.sigs / median(e.cpu);
    const vsWall = ldns ? fmt(median(ldns.s) / median(e.s), 2) : '–';
    const vsCpu = ldns ? fmt(perCpu / (ldns.sigs / median(ldns.cpu)), 2) : '–';
    lines.push(
      `| ${name} | ${fmt(median(e.s), 2)} | ${fmt(median(e.cpu), 2)} | ${fmt(e.sigs)} | ${fmt(perCpu)} | ${vsWall} | ${vsCpu} | ${e.load.map((l) => fmt(l, 1)).join(' ')} |`,
    );
  }
  if (has('dnsperf') && process.env.BENCH_DO !== '0') {
    const r = await doRatio();
    const m = (l, k) => median(r[l][k]);
    lines.push('', 'Queries against the signed bench zone (UDP, EDNS; realistic mix):', '');
    lines.push('| DO bit | QPS | answers / server CPU-s | lost |', '|---|---:|---:|---:|');
    for (const l of ['DO=0', 'DO=1'])
      lines.push(`| ${l} | ${fmt(m(l, 'qps'))} | ${fmt(m(l, 'perCpu'))} | ${fmt(m(l, 'lost'))} |`);
    lines.push(
      '',
      `DO=1 / DO=0: ${fmt(m('DO=1', 'perCpu') / m('DO=0', 'perCpu'), 2)} (answers per CPU-s), ${fmt(m('DO=1', 'qps') / m('DO=0', 'qps'), 2)} (QPS)`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:dnssec: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
