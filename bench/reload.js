// @ts-check
/**
 * Reload under load: popdns (--workers 1) serves a big zone (RELOAD_RECORDS A records, default
 * 1,000,000, RFC 1035); dnsperf sends for RELOAD_SECONDS (default 20) and RELOAD_AT seconds in
 * (default 5) we send SIGHUP, which re-reads and rebuilds the zone and swaps it in. Reported:
 *
 * - dnsperf's queries sent / completed / lost (timeout -t RELOAD_DNSPERF_TIMEOUT s, default 2, as in
 *   bench/run.js), for the reload run and for a baseline run of the same length without a reload;
 * - how long the reload took (SIGHUP → the server's "reload done" line) and the longest time a probe
 *   (one query every 10 ms from this process, on its own socket) waited for an answer;
 * - memory of all the server's processes (primary and workers) summed: VmRSS before the SIGHUP, the
 *   peak during the swap (VmHWM after resetting it with /proc/PID/clear_refs just before the SIGHUP,
 *   and the highest VmRSS polled every 50 ms), VmRSS when the run ends.
 *
 *   node bench/reload.js
 *   RELOAD_RECORDS=100000 RELOAD_SECONDS=20 node bench/reload.js
 *
 * Everything is bounded: the server start (180 s), dnsperf (-l RELOAD_SECONDS), the whole script
 * (RELOAD_SECONDS × 2 + 300 s). Only 127.0.0.1 is used; every process started here is killed by PID.
 */
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bigZone } from './gen.js';
import {
  descendants,
  dnsperfArgs,
  fmt,
  has,
  memory,
  MiB,
  parseDnsperf,
  queryBytes,
  resetPeak,
  startServer,
  workDir,
} from './lib.js';

/**
 * VmRSS and VmHWM summed over the server's processes (the primary and, with --workers N, its workers).
 * The summed VmHWM adds each process's own peak, which a rolling reload reaches at different times: an
 * upper bound; the polled sum of VmRSS is what was in use at once.
 */
function treeMemory(pid) {
  let rss = 0;
  let hwm = 0;
  for (const p of descendants(pid)) {
    const m = memory(p);
    rss += m.rss;
    hwm += m.hwm;
  }
  return { rss, hwm };
}

function resetTreePeak(pid) {
  return descendants(pid)
    .map((p) => resetPeak(p))
    .every(Boolean);
}

const RECORDS = Number(process.env.RELOAD_RECORDS ?? 1_000_000);
const SECONDS = Number(process.env.RELOAD_SECONDS ?? 20);
/** RELOAD_WORKERS ≥ 2: the workers reload one at a time (the others keep answering). */
const WORKERS = Number(process.env.RELOAD_WORKERS ?? 1);
const AT = Number(process.env.RELOAD_AT ?? 5);
const DNSPERF_TIMEOUT = Number(process.env.RELOAD_DNSPERF_TIMEOUT ?? 2);
const BASELINE = process.env.RELOAD_BASELINE !== '0';
/** Seconds after "reload done" at which memory is read once more (the "30 s later"). */
const LATER = Number(process.env.RELOAD_LATER ?? 30);

const guard = setTimeout(
  () => {
    process.stderr.write('reload: overall time limit reached\n');
    process.exit(2);
  },
  (SECONDS * 2 + 300) * 1000,
);
guard.unref();

/** 90% names that exist, 10% that don't, deterministic. */
function bigQueries(path, n, count = 100_000) {
  let s = 7;
  const r = () => {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    return s / 4294967296;
  };
  const lines = [];
  for (let i = 0; i < count; i++) {
    const k = Math.floor(r() * n);
    lines.push(r() < 0.9 ? `h${k}.big.test. A` : `nx${k}.big.test. A`);
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

/** dnsperf as a child process (so this one can poll /proc and signal the server meanwhile). */
function dnsperfAsync(port, queries) {
  const [c, a] = dnsperfArgs(port, queries, 'udp', SECONDS, DNSPERF_TIMEOUT, ['-S', '1']);
  return new Promise((resolve, reject) => {
    const p = spawn(c, a, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    const kill = setTimeout(() => p.kill('SIGKILL'), (SECONDS + 30) * 1000);
    p.on('error', reject);
    let err = '';
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('exit', (code, signal) => {
      clearTimeout(kill);
      if (process.env.RELOAD_RAW) writeFileSync(`${process.env.RELOAD_RAW}.${Date.now()}`, out + err);
      if (code !== 0)
        process.stderr.write(`reload: dnsperf exited with ${signal ?? code}: ${err.slice(-300)}\n`);
      const perSecond = [...out.matchAll(/^\d+\.\d+: ([\d.]+)$/gm)].map((m) => Number(m[1]));
      // dnsperf's first status line can be the ~0 of the instant it started.
      if (perSecond.length && perSecond[0] < 1) perSecond.shift();
      resolve({ ...parseDnsperf(out), perSecond });
    });
  });
}

/** One query every 10 ms; reports the longest wait for an answer (unanswered ones count until `stop`). */
function probe(port) {
  const s = createSocket('udp4');
  const sent = new Map();
  let id = 0;
  let maxWait = 0;
  let answered = 0;
  s.on('message', (m) => {
    const k = (m[0] << 8) | m[1];
    const t = sent.get(k);
    if (t === undefined) return;
    sent.delete(k);
    answered++;
    maxWait = Math.max(maxWait, performance.now() - t);
  });
  const timer = setInterval(() => {
    id = (id + 1) & 0xffff;
    sent.set(id, performance.now());
    s.send(queryBytes('h1.big.test.', 1, id), port, '127.0.0.1');
  }, 10);
  return () => {
    clearInterval(timer);
    const now = performance.now();
    for (const t of sent.values()) maxWait = Math.max(maxWait, now - t);
    s.close();
    return { maxWait: maxWait / 1000, answered, unanswered: sent.size };
  };
}

async function main() {
  if (!existsSync('dist/cli.js')) throw new Error('run `npm run build` first (from the repository root)');
  if (!has('dnsperf')) throw new Error('dnsperf is not installed: apt-get install dnsperf');
  const work = workDir('popdns-reload-');
  const zdir = join(work, 'zones');
  mkdirSync(zdir);
  process.stderr.write(`reload: generating a ${fmt(RECORDS)}-record zone…\n`);
  await bigZone(zdir, RECORDS, false);
  const queries = join(work, 'queries.txt');
  bigQueries(queries, RECORDS);

  const s = await startServer('popdns', zdir, {
    workers: WORKERS,
    probe: `h${RECORDS - 1}.big.test.`,
    probeType: 1,
    timeoutSec: 180,
    work,
    stdout: true,
  });
  process.stderr.write(`reload: popdns answering after ${fmt(s.ready, 1)} s (pid ${s.pid})\n`);
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const loaded = treeMemory(s.pid);

    let base = null;
    if (BASELINE) {
      base = await dnsperfAsync(s.port, queries);
      process.stderr.write(
        `reload: baseline (no reload): ${fmt(base.qps)} qps, sent ${base.sent}, lost ${base.lost}\n`,
      );
    }

    const before = treeMemory(s.pid);
    const run = dnsperfAsync(s.port, queries);
    const stopProbe = probe(s.port);
    let maxRss = before.rss;
    const poll = setInterval(() => {
      maxRss = Math.max(maxRss, treeMemory(s.pid).rss);
    }, 50);
    await new Promise((r) => setTimeout(r, AT * 1000));
    const rssAtHup = treeMemory(s.pid).rss;
    const reset = resetTreePeak(s.pid);
    const outBefore = s.stdout().length;
    const errBefore = s.stderr().length;
    // The server logs to stderr (src/log); stdout too, in case an older build is measured.
    const logSince = () => s.stderr().slice(errBefore) + s.stdout().slice(outBefore);
    const tHup = performance.now();
    // Change the zone (one more record), so the reload really parses and swaps it: an unchanged file
    // is kept as loaded without a parse.
    appendFileSync(join(zdir, 'big.test.zone'), 'reload-marker IN A 192.0.2.99\n');
    s.child.kill('SIGHUP');
    let reloadSec = null;
    let tDone = 0;
    const watch = setInterval(() => {
      if (reloadSec === null && (logSince().match(/reload done/g)?.length ?? 0) >= WORKERS) {
        tDone = performance.now();
        reloadSec = (tDone - tHup) / 1000;
      }
    }, 20);
    const r = await run;
    const p = stopProbe();
    // Let a reload that outlasted the dnsperf run finish (bounded), then read memory again.
    const until = performance.now() + 120_000;
    while (reloadSec === null && performance.now() < until) await new Promise((x) => setTimeout(x, 100));
    clearInterval(watch);
    const after = treeMemory(s.pid);
    await new Promise((x) => setTimeout(x, 2000));
    const settled = treeMemory(s.pid);
    // Idle from here on (dnsperf is done): memory LATER s after the reload finished.
    const wait = tDone ? tDone + LATER * 1000 - performance.now() : 0;
    if (wait > 0) await new Promise((x) => setTimeout(x, wait));
    clearInterval(poll);
    const later = treeMemory(s.pid);
    const released = /memory released after the zone swap.*/.exec(logSince());

    const lines = [
      `reload under load — ${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, ${fmt(RECORDS)} A records (RFC 1035), popdns --workers ${WORKERS}, dnsperf -c 1 -q 200 -t ${DNSPERF_TIMEOUT} for ${SECONDS} s, SIGHUP at ${AT} s`,
      '',
      '| run | QPS | sent | completed | lost | lowest 1-s QPS |',
      '|---|---:|---:|---:|---:|---:|',
    ];
    const row = (label, x) =>
      `| ${label} | ${fmt(x.qps)} | ${fmt(x.sent)} | ${fmt(x.completed)} | ${fmt(x.lost)} | ${x.perSecond.length ? fmt(Math.min(...x.perSecond)) : 'n/a'} |`;
    if (base) lines.push(row('baseline, no reload', base));
    lines.push(row('SIGHUP mid-run', r));
    lines.push('');
    lines.push('| reload | value |');
    lines.push('|---|---:|');
    lines.push(`| first answer after start (s) | ${fmt(s.ready, 1)} |`);
    lines.push(
      `| SIGHUP → "reload done" (s) | ${reloadSec === null ? '> dnsperf run + 120' : fmt(reloadSec, 1)} |`,
    );
    lines.push(
      `| longest wait of a 10-ms probe for an answer (s) | ${fmt(p.maxWait, 2)} (${p.unanswered} unanswered at the end) |`,
    );
    lines.push(`| RSS once loaded (MiB) | ${fmt(MiB(loaded.rss))} |`);
    lines.push(`| RSS at SIGHUP (MiB) | ${fmt(MiB(rssAtHup))} |`);
    lines.push(
      `| peak RSS during the swap, VmHWM (MiB${WORKERS > 1 ? ", each process's peak summed" : ''}) | ${reset ? fmt(MiB(after.hwm)) : 'n/a (clear_refs refused)'} |`,
    );
    lines.push(`| peak RSS during the swap, polled every 50 ms (MiB) | ${fmt(MiB(maxRss))} |`);
    lines.push(`| RSS at the end of the run (MiB) | ${fmt(MiB(after.rss))} |`);
    lines.push(`| RSS 2 s later (MiB) | ${fmt(MiB(settled.rss))} |`);
    lines.push(`| RSS ${LATER} s after "reload done", idle (MiB) | ${fmt(MiB(later.rss))} |`);
    lines.push(
      `| ratio to RSS once loaded: peak (VmHWM) / polled peak / ${LATER} s later | ${fmt(after.hwm / loaded.rss, 2)} / ${fmt(maxRss / loaded.rss, 2)} / ${fmt(later.rss / loaded.rss, 2)} |`,
    );
    lines.push(
      `| server's collection after the swap | ${released ? released[0].slice(0, 200) : 'none logged'} |`,
    );
    lines.push(`| dnsperf per-second QPS | ${r.perSecond.map((x) => fmt(x)).join(', ')} |`);
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await s.stop();
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`reload: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
