// @ts-check
/**
 * The big zone: N A records (default 1,000,000) as an RFC 1035 file (popdns, NSD, Knot) and as YAML
 * (popdns). For each server: seconds from process start to the first authoritative answer for the
 * zone's last name (NOERROR, AA, one A record), and memory once loaded (1 s after that answer), read
 * from /proc: VmRSS, the peak VmHWM, and PSS, summed over the server's process tree (NSD forks; the
 * others are one process here). Every start is bounded (BENCH_BIG_TIMEOUT, default 180 s): a server
 * that has not answered by then is killed and reported as "> 180 s".
 *
 *   node bench/bigzone.js                 # standalone; bench/run.js calls bigZoneRows() too
 *   BENCH_BIG_RECORDS=100000 node bench/bigzone.js
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bigZone } from './gen.js';
import { fmt, has, MiB, startServer, StartTimeout, tree, workDir } from './lib.js';

export const BIG_RECORDS = Number(process.env.BENCH_BIG_RECORDS ?? 1_000_000);
export const BIG_TIMEOUT = Number(process.env.BENCH_BIG_TIMEOUT ?? 180);
/** BENCH_BIG_ONLY=knot,popdns limits the servers (labels starting with these words); default all. */
const ONLY = process.env.BENCH_BIG_ONLY?.split(',') ?? null;
const wanted = (label) => ONLY === null || ONLY.some((w) => label === w || label.startsWith(`${w} (`));
/** BENCH_BIG_YAML=0 skips the YAML file (slow, and not what the memory row compares). */
const YAML = process.env.BENCH_BIG_YAML !== '0';

/**
 * @typedef {{ label: string, ready: number | null, rss: number, hwm: number, pss: number,
 *   cpu: number, procs: number }} BigRow
 */

/** Measures every server on the big zone; `ready` is null when it timed out. */
export async function bigZoneRows(work, records = BIG_RECORDS, timeoutSec = BIG_TIMEOUT) {
  const dir = join(work, 'big');
  process.stderr.write(`generating a ${fmt(records)}-record zone…\n`);
  await bigZone(dir, records, YAML);
  /** @type {BigRow[]} */
  const rows = [];
  const probe = `h${records - 1}.big.test.`;
  const measure = async (label, kind, zdir) => {
    if (!wanted(label)) return;
    try {
      const s = await startServer(kind, zdir, { probe, probeType: 1, workers: 1, timeoutSec, work });
      await new Promise((r) => setTimeout(r, 1000));
      const t = tree(s.pid);
      await s.stop();
      rows.push({ label, ready: s.ready, ...t });
      process.stderr.write(
        `  ${label}: first answer after ${fmt(s.ready, 1)} s, RSS ${fmt(MiB(t.rss))} MiB (peak ${fmt(MiB(t.hwm))}, PSS ${fmt(MiB(t.pss))}), ${fmt(t.cpu, 1)} CPU-s, ${t.procs} process(es)\n`,
      );
    } catch (e) {
      if (!(e instanceof StartTimeout)) throw e;
      rows.push({ label, ready: null, rss: 0, hwm: 0, pss: 0, cpu: 0, procs: 0 });
      process.stderr.write(`  ${label}: no answer within ${timeoutSec} s (killed)\n`);
    }
  };
  if (has('knotd')) await measure('knot', 'knot', dir);
  if (has('nsd')) await measure('nsd', 'nsd', dir);
  await measure('popdns (RFC 1035)', 'popdns', dir);
  if (YAML) await measure('popdns (YAML)', 'popdns', join(dir, 'yaml'));
  return rows;
}

/** The Markdown table, with ratios to Knot (RSS for memory: popdns and Knot are single processes). */
export function bigZoneTable(rows, records = BIG_RECORDS, timeoutSec = BIG_TIMEOUT) {
  const knot = rows.find((r) => r.label === 'knot' && r.ready !== null);
  const lines = [
    `| ${fmt(records)} A records | first answer (s) | RSS (MiB) | peak RSS (MiB) | PSS (MiB) | load CPU-s | time / Knot | RSS / Knot |`,
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    if (r.ready === null) {
      lines.push(
        `| ${r.label} | > ${timeoutSec} | n/a | n/a | n/a | n/a | > ${knot ? fmt(timeoutSec / knot.ready, 0) : 'n/a'} | n/a |`,
      );
      continue;
    }
    lines.push(
      `| ${r.label} | ${fmt(r.ready, 1)} | ${fmt(MiB(r.rss))} | ${fmt(MiB(r.hwm))} | ${fmt(MiB(r.pss))} | ${fmt(r.cpu, 1)} | ${knot ? fmt(r.ready / knot.ready, 2) : 'n/a'} | ${knot ? fmt(r.rss / knot.rss, 2) : 'n/a'} |`,
    );
  }
  return lines;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (!existsSync('dist/cli.js')) {
    process.stderr.write('bigzone: run `npm run build` first (and run from the repository root)\n');
    process.exit(1);
  }
  const work = workDir();
  bigZoneRows(work).then(
    (rows) => {
      process.stdout.write(`${bigZoneTable(rows).join('\n')}\n`);
      process.exit(0);
    },
    (e) => {
      process.stderr.write(`bigzone: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(1);
    },
  );
}
