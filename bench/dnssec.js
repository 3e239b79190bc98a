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

/** Seconds a command takes (wall clock), bounded at 600 s. */
function timed(cmd, args) {
  const [c, a] = pin(0, cmd, args);
  const t0 = process.hrtime.bigint();
  execFileSync(c, a, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 600_000 });
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

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
  const tools = [
    [
      'popdns sign',
      () => {
        const out = join(work, 'popdns.signed');
        const s = timed(process.execPath, ['dist/cli.js', 'sign', zoneFile, '--keys', keys, '--out', out]);
        return { s, sigs: rrsigs(out) };
      },
    ],
  ];
  if (has('ldns-signzone')) {
    tools.push([
      'ldns-signzone',
      () => {
        const out = join(work, 'ldns.signed');
        // -o origin, -f output; NSEC (the default); the key by its base name (BIND format files).
        const s = timed('ldns-signzone', ['-o', `${origin}.`, '-f', out, zoneFile, join(keys, base)]);
        return { s, sigs: rrsigs(out) };
      },
    ]);
  }
  if (has('dnssec-signzone')) {
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
          '-K',
          keys,
          '-o',
          `${origin}.`,
          '-f',
          out,
          zoneFile,
        ]);
        return { s, sigs: rrsigs(out) };
      },
    ]);
  }
  /** @type {Map<string, {s:number[], sigs:number}>} */
  const res = new Map();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, run] of tools) {
      const { s, sigs } = /** @type {() => {s:number, sigs:number}} */ (run)();
      const e = res.get(/** @type {string} */ (name)) ?? { s: [], sigs };
      e.s.push(s);
      res.set(/** @type {string} */ (name), e);
      process.stderr.write(`  round ${r + 1}/${ROUNDS} ${name}: ${fmt(s, 2)} s, ${fmt(sigs)} RRSIGs\n`);
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
    `Signing ${fmt(RECORDS)} A records (ECDSAP256SHA256 CSK, NSEC; whole command, median of ${ROUNDS}):`,
    '',
    '| signer | seconds | RRSIGs | signatures / s | popdns / this |',
    '|---|---:|---:|---:|---:|',
  ];
  const sign = await signing();
  const popdnsRate = (() => {
    const e = sign.get('popdns sign');
    return e ? e.sigs / median(e.s) : 0;
  })();
  for (const [name, e] of sign) {
    const rate = e.sigs / median(e.s);
    lines.push(
      `| ${name} | ${fmt(median(e.s), 2)} | ${fmt(e.sigs)} | ${fmt(rate)} | ${fmt(popdnsRate / rate, 2)} |`,
    );
  }
  if (has('dnsperf')) {
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
