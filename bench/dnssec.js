// @ts-check
/**
 * `npm run bench:dnssec`: what DNSSEC costs popdns, measured beside the reference tools.
 *
 * 1. Signing throughput: `popdns sign` against `ldns-signzone` and `dnssec-signzone` on the same zone
 *    (N A records, default 50,000) with the same ECDSAP256SHA256 key (made by `popdns keygen`: BIND's
 *    key-file format, which both tools read), NSEC. Signatures per second of wall time, whole command
 *    (start, parse, sign, write), median of rounds.
 * 2. Query throughput with DO=1 as a ratio of DO=0 (part `do`): popdns serving the bench zone signed
 *    at load, Knot serving the same zone signed by `popdns sign`, and bench/echo.js padding its
 *    answers to popdns's mean DO=0 / DO=1 response sizes (what the bytes alone cost Node's dgram path);
 *    dnsperf with EDNS (-e) and with the DO bit (-D); each server started once, interleaved rounds;
 *    answers per server CPU-second (and the system-time share), QPS, mean response size.
 * 3. The signed big zone (part `signedbig`, BENCH_SIGNED_BIG=1): start and reload of a signed
 *    BENCH_SIGNED_BIG_RECORDS (1,000,000)-record zone, popdns signing at load beside Knot with
 *    automatic signing (see signedBig below).
 *
 * Env: BENCH_DNSSEC_PARTS (sign,do; add signedbig), BENCH_SIGN_RECORDS (default 50000), BENCH_SECONDS
 * (per dnsperf round, default 5), BENCH_ROUNDS (default 3), BENCH_SIGNED_BIG_RECORDS, _TIMEOUT (600 s),
 * _PROF (a directory: popdns under --cpu-prof there), BENCH_PORTS (LO-HI, bench/lib.js).
 * Everything on 127.0.0.1; every process started is stopped by PID.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { bigZone, ORIGIN, queryFile, realisticZone } from './gen.js';
import {
  CORES,
  dnsperfArgs,
  fmt,
  has,
  median,
  MiB,
  parseDnsperf,
  pin,
  resetPeak,
  startServer,
  StartTimeout,
  tree,
  udpAsk,
  workDir,
} from './lib.js';

const RECORDS = Number(process.env.BENCH_SIGN_RECORDS ?? 50_000);
/** Which parts run: BENCH_DNSSEC_PARTS (comma-separated: sign, do, signedbig); BENCH_SIGNED_BIG=1 adds signedbig. */
const PARTS = new Set(
  (process.env.BENCH_DNSSEC_PARTS ?? `sign,do${process.env.BENCH_SIGNED_BIG === '1' ? ',signedbig' : ''}`)
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean),
);
if (process.env.BENCH_SIGNED_BIG === '1') PARTS.add('signedbig');
const SIGNED_BIG_RECORDS = Number(process.env.BENCH_SIGNED_BIG_RECORDS ?? 1_000_000);
const SIGNED_BIG_TIMEOUT = Number(process.env.BENCH_SIGNED_BIG_TIMEOUT ?? 600);
/** BENCH_SIGNED_BIG_PROF=DIR: popdns runs under --cpu-prof in the signed big part, profiles kept in DIR. */
const SIGNED_BIG_PROF = process.env.BENCH_SIGNED_BIG_PROF ?? '';
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

/** Mean response size (octets) from dnsperf's "Average packet size: request N, response M". */
const responseBytes = (out) => Number(/Average packet size:.*response (\d+)/.exec(out)?.[1] ?? 0);

/**
 * DO=1 against DO=0, popdns beside Knot on the same signed zone and query mix: popdns signs the bench
 * zone at load (`--keys`, as the README documents); Knot serves the same zone signed by `popdns sign`
 * (the same records and signature sizes: Knot's own ratio is then what the bigger answers cost a C
 * server). Each server is started once and measured in interleaved rounds (DO=0 DO=1, then DO=1
 * DO=0, ...): answers per server CPU-second (user and system time apart: the system time is the
 * kernel's sendto/recvmsg path, which grows with the response size), QPS, mean response size.
 */
async function doRatio() {
  const zoneDir = join(work, 'zones');
  mkdirSync(zoneDir);
  realisticZone(zoneDir, 2000);
  const queries = join(work, 'queries.txt');
  queryFile(queries, 2000, 100_000);
  const keys = join(work, 'keys');
  keygen(keys, ORIGIN.replace(/\.$/, ''));
  const kinds = [{ name: 'popdns', kind: 'popdns', dir: zoneDir, args: ['--keys', keys] }];
  if (has('knotd')) {
    const signedDir = join(work, 'zones-signed');
    mkdirSync(signedDir);
    execFileSync(
      process.execPath,
      [
        'dist/cli.js',
        'sign',
        join(zoneDir, `${ORIGIN}zone`),
        '--keys',
        keys,
        '--out',
        join(signedDir, `${ORIGIN}zone`),
      ],
      { stdio: 'ignore', timeout: 120_000 },
    );
    kinds.push({ name: 'knot', kind: 'knot', dir: signedDir, args: [] });
  }
  // The Node ceiling for the same response sizes: bench/echo.js answering with popdns's mean DO=0 and
  // DO=1 response sizes (ECHO_PAD, measured once here; the echo server inherits the environment).
  kinds.push({ name: 'echo (padded)', kind: 'echo', dir: zoneDir, args: [] });
  /** @type {Record<string, {perCpu:number[], qps:number[], lost:number[], bytes:number[], sys:number[]}>} */
  const res = {};
  const servers = [];
  for (const k of kinds) {
    const probe = { probe: `host1.${ORIGIN}`, probeType: 1, probeSigned: true };
    if (k.kind === 'echo') {
      const p = servers[0]?.s.port;
      const size = (extra) => {
        const [c, a] = dnsperfArgs(p, queries, 'udp', 1, 2, extra);
        return responseBytes(execFileSync(c, a, { encoding: 'utf8', timeout: 30_000 }));
      };
      process.env.ECHO_PAD = `${size(['-e'])},${size(['-D'])}`;
      process.stderr.write(`  echo pads its answers to ${process.env.ECHO_PAD} octets (DO=0,DO=1)\n`);
    }
    const s = await startServer(/** @type {'popdns'|'knot'|'echo'} */ (k.kind), k.dir, {
      work,
      args: k.args,
      ...probe,
    });
    servers.push({ ...k, s });
  }
  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const { name, s } of servers) {
        for (const label of r % 2 === 0 ? ['DO=0', 'DO=1'] : ['DO=1', 'DO=0']) {
          const key = `${name} ${label}`;
          const e = (res[key] ??= { perCpu: [], qps: [], lost: [], bytes: [], sys: [] });
          const before = tree(s.pid);
          const [c, a] = dnsperfArgs(s.port, queries, 'udp', SECONDS, 2, label === 'DO=1' ? ['-D'] : ['-e']);
          const out = execFileSync(c, a, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
          const d = parseDnsperf(out);
          const after = tree(s.pid);
          const cpu = after.cpu - before.cpu;
          e.perCpu.push(cpu > 0 ? d.completed / cpu : 0);
          e.qps.push(d.qps);
          e.lost.push(d.lost);
          e.bytes.push(responseBytes(out));
          e.sys.push(cpu > 0 ? (after.sys - before.sys) / cpu : 0);
          process.stderr.write(
            `  round ${r + 1}/${ROUNDS} ${key}: ${fmt(d.qps)} qps, ${fmt(cpu, 2)} cpu-s (${fmt((100 * (after.sys - before.sys)) / (cpu || 1))}% sys), ${fmt(d.completed / (cpu || 1))} answers/cpu-s, ${responseBytes(out)} B/answer, lost ${d.lost}, load ${loadavg()[0]?.toFixed(2)}\n`,
          );
        }
      }
    }
  } finally {
    for (const { s } of servers) await s.stop();
  }
  return { res, names: servers.map((s) => s.name) };
}

/** Overwrites the SOA serial of a bench/gen.js bigZone file and appends one A record `name`. */
function bumpZone(file, serial, name) {
  const text = readFileSync(file, 'utf8').replace(
    /^@ SOA ns1 hostmaster \d+ /m,
    `@ SOA ns1 hostmaster ${serial} `,
  );
  writeFileSync(file, `${text}${name} A 10.255.255.254\n`);
}

/** Polls 127.0.0.1:port every 20 ms until `name`/A answers with its RRSIG (DO=1); seconds, or null. */
async function waitSigned(port, name, t0, timeoutSec) {
  for (;;) {
    const r = await udpAsk(port, name, 1, 200, true);
    if (r && r.rcode === 0 && r.aa && r.an > 1) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > timeoutSec * 1000) return null;
    await new Promise((res) => setTimeout(res, 20));
  }
}

/**
 * The signed big zone (BENCH_SIGNED_BIG=1): BENCH_SIGNED_BIG_RECORDS (1,000,000) A records, served
 * signed by popdns (`serve --keys`: signing at load) and by Knot (`dnssec-signing: on`, ECDSAP256SHA256
 * CSK, NSEC, `signing-threads` = cores), neither pinned to a core. Start: seconds from process start
 * to the first DO=1 answer for the zone's last name that carries its RRSIG; CPU-s and peak RSS
 * (VmHWM) of the server at that moment. Reload: one A record appended and the SOA serial raised, then
 * SIGHUP (popdns) or `knotc zone-reload` (Knot, through its control socket); seconds until the new
 * name answers signed, CPU-s spent, peak RSS during the reload (VmHWM reset just before). Each start
 * and reload is bounded by BENCH_SIGNED_BIG_TIMEOUT (600 s).
 */
async function signedBig() {
  const n = SIGNED_BIG_RECORDS;
  const base = join(work, 'signed-big');
  process.stderr.write(`generating a ${fmt(n)}-record zone…\n`);
  await bigZone(base, n, false);
  const keys = join(work, 'signed-big-keys');
  keygen(keys, 'big.test');
  const probe = `h${n - 1}.big.test.`;
  const rows = [];
  const servers = [['popdns', 'popdns']];
  if (has('knotd')) servers.unshift(['knot', 'knot']);
  for (const [label, kind] of servers) {
    const dir = join(work, `signed-big-${label}`);
    mkdirSync(dir);
    copyFileSync(join(base, 'big.test.zone'), join(dir, 'big.test.zone'));
    /** @type {import('./lib.js').StartOpts} */
    const opts = {
      work,
      probe,
      probeType: 1,
      probeSigned: true,
      timeoutSec: SIGNED_BIG_TIMEOUT,
      pin: false,
      ...(kind === 'knot' ? { knotSigning: CORES } : { args: ['--keys', keys] }),
      ...(kind === 'popdns' && SIGNED_BIG_PROF
        ? { nodeArgs: ['--cpu-prof', '--cpu-prof-dir', SIGNED_BIG_PROF] }
        : {}),
    };
    let s;
    try {
      s = await startServer(/** @type {'popdns'|'knot'} */ (kind), dir, opts);
    } catch (e) {
      if (!(e instanceof StartTimeout)) throw e;
      rows.push({ label, start: null });
      process.stderr.write(`  ${label}: no signed answer within ${SIGNED_BIG_TIMEOUT} s (killed)\n`);
      continue;
    }
    const t = tree(s.pid);
    const row = {
      label,
      start: s.ready,
      startCpu: t.cpu,
      startPeak: t.hwm,
      rss: t.rss,
      reload: null,
      reloadCpu: 0,
      reloadPeak: 0,
    };
    process.stderr.write(
      `  ${label}: signed answer after ${fmt(s.ready, 1)} s, ${fmt(t.cpu, 1)} CPU-s, peak RSS ${fmt(MiB(t.hwm))} MiB, load ${loadavg()[0]?.toFixed(2)}\n`,
    );
    try {
      bumpZone(join(dir, 'big.test.zone'), 1000, 'hnew');
      resetPeak(s.pid);
      const before = tree(s.pid);
      const t0 = Date.now();
      if (kind === 'knot') {
        execFileSync('knotc', ['-s', join(s.dir, 'knot.sock'), 'zone-reload', 'big.test.'], {
          stdio: 'ignore',
          timeout: 30_000,
        });
      } else s.child.kill('SIGHUP');
      row.reload = await waitSigned(s.port, 'hnew.big.test.', t0, SIGNED_BIG_TIMEOUT);
      const after = tree(s.pid);
      row.reloadCpu = after.cpu - before.cpu;
      row.reloadPeak = after.hwm;
      process.stderr.write(
        `  ${label}: reload → new name signed after ${row.reload === null ? 'timeout' : `${fmt(row.reload, 1)} s`}, ${fmt(row.reloadCpu, 1)} CPU-s, peak RSS ${fmt(MiB(after.hwm))} MiB\n`,
      );
    } finally {
      await s.stop();
    }
    rows.push(row);
  }
  const knot = rows.find((r) => r.label === 'knot' && r.start !== null);
  const x = (v, k) => (v !== null && k ? fmt(v / k, 2) : 'n/a');
  return [
    `Signed big zone: ${fmt(n)} A records (ECDSAP256SHA256 CSK, NSEC), not pinned, ${CORES} cores; Knot signs with signing-threads ${CORES}, popdns signs at load (serve --keys). Start = process start → first DO=1 answer for the last name with its RRSIG; reload = one record added + serial raised, SIGHUP (popdns) / knotc zone-reload (Knot) → the new name answers signed.`,
    '',
    '| server | start (s) | start CPU-s | start peak RSS (MiB) | start / Knot | reload (s) | reload CPU-s | reload peak RSS (MiB) | reload / Knot |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map((r) =>
      r.start === null
        ? `| ${r.label} | > ${SIGNED_BIG_TIMEOUT} | n/a | n/a | n/a | n/a | n/a | n/a | n/a |`
        : `| ${r.label} | ${fmt(r.start, 1)} | ${fmt(r.startCpu, 1)} | ${fmt(MiB(r.startPeak))} | ${x(r.start, knot?.start)} | ${r.reload === null ? `> ${SIGNED_BIG_TIMEOUT}` : fmt(r.reload, 1)} | ${fmt(r.reloadCpu, 1)} | ${fmt(MiB(r.reloadPeak))} | ${x(r.reload, knot?.reload)} |`,
    ),
  ];
}

async function main() {
  if (!existsSync('dist/cli.js')) throw new Error('run `npm run build` first');
  process.stderr.write(
    `bench:dnssec: ${CORES} cores, Node ${process.version}, ${ROUNDS} rounds, parts ${[...PARTS].join(',')}\n`,
  );
  const lines = [
    `popdns DNSSEC bench — ${new Date().toISOString().slice(0, 16)}Z, ${cpus()[0]?.model ?? 'cpu'} × ${CORES}, Node ${process.version}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  ];
  if (PARTS.has('sign')) {
    lines.push(
      '',
      `Signing ${fmt(RECORDS)} A records (ECDSAP256SHA256 CSK, ${process.env.BENCH_SIGN_NSEC3 === '1' ? 'NSEC3' : 'NSEC'}; whole command, ${SIGN_PIN ? 'pinned to CPU 0' : `on ${CORES} cores`}, median of ${ROUNDS} interleaved rounds):`,
      '',
      '| signer | wall s | CPU-s | RRSIGs | signatures / CPU-s | ldns wall / this | this per CPU-s / ldns | load (1 min) |',
      '|---|---:|---:|---:|---:|---:|---:|---:|',
    );
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
  }
  if (PARTS.has('do') && has('dnsperf')) {
    const { res, names } = await doRatio();
    const m = (l, k) => median(res[l]?.[k] ?? []);
    lines.push(
      '',
      `Queries against the signed bench zone (UDP, EDNS; realistic mix; median of ${ROUNDS} interleaved rounds of ${SECONDS} s; Knot serves the same zone signed by popdns sign):`,
      '',
      '| server, DO bit | QPS | answers / server CPU-s | system share of CPU | response bytes | lost |',
      '|---|---:|---:|---:|---:|---:|',
    );
    for (const n of names)
      for (const d of ['DO=0', 'DO=1']) {
        const l = `${n} ${d}`;
        lines.push(
          `| ${l} | ${fmt(m(l, 'qps'))} | ${fmt(m(l, 'perCpu'))} | ${fmt(100 * m(l, 'sys'))}% | ${fmt(m(l, 'bytes'))} | ${fmt(m(l, 'lost'))} |`,
        );
      }
    lines.push('');
    for (const n of names)
      lines.push(
        `${n} DO=1 / DO=0: ${fmt(m(`${n} DO=1`, 'perCpu') / m(`${n} DO=0`, 'perCpu'), 2)} (answers per CPU-s), ${fmt(m(`${n} DO=1`, 'qps') / m(`${n} DO=0`, 'qps'), 2)} (QPS)  `,
      );
  }
  if (PARTS.has('signedbig')) lines.push('', ...(await signedBig()));
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:dnssec: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
