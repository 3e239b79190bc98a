// @ts-check
/**
 * `npm run bench`: popdns beside NSD, Knot and a bare Node UDP echo (the ceiling for any pure-Node
 * server), on the same zone and query file, in one run. dnsperf saturates a core on these machines, so
 * the robust number is answers per server CPU-second (utime+stime of the server's process tree from
 * /proc), reported with QPS; ratios are what to compare across runs. Everything runs on 127.0.0.1;
 * every server this starts is stopped by PID.
 *
 * Env: BENCH_SECONDS (per round, default 5), BENCH_ROUNDS (default 3), BENCH_BIG (0 skips the big zone),
 * BENCH_BIG_RECORDS (default 1000000), BENCH_BIG_TIMEOUT (s per server start, default 180), BENCH_TCP
 * (0 skips TCP), BENCH_THROUGHPUT (0 skips the dnsperf part). Every server start is bounded (180 s).
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { bigZoneRows, bigZoneTable } from './bigzone.js';
import { queryFile, realisticZone } from './gen.js';
import { CORES, cpuClock, dnsperf, fmt, has, median, startServer, tree, workDir } from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BIG = process.env.BENCH_BIG !== '0';
const TCP = process.env.BENCH_TCP !== '0';
const THROUGHPUT = process.env.BENCH_THROUGHPUT !== '0';

const work = workDir();

async function throughput(zoneDir, queries) {
  // RRL on with rates no bench client reaches: the cost of accounting every UDP answer, no limiting.
  const rrlConfig = join(work, 'rrl.yaml');
  writeFileSync(rrlConfig, 'rrl:\n  responses-per-second: 1000000\n  errors-per-second: 1000000\n');
  /** @type {[string, {workers?: number, args?: string[], tag?: string}][]} */
  const kinds = [
    ['popdns', { workers: 1 }],
    ['popdns', { workers: 1, args: ['--config', rrlConfig], tag: 'rrl' }],
    ['popdns', { workers: 2 }],
    ['echo', {}],
  ];
  if (has('nsd')) kinds.push(['nsd', {}]);
  if (has('knotd')) kinds.push(['knot', {}]);
  const modes = TCP ? ['udp', 'tcp'] : ['udp'];
  /** @type {Map<string, {qps:number[], perCpu:number[], lost:number[], noerror:number[], nxdomain:number[], other:number[]}>} */
  const results = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of modes) {
      for (const [kind, opts] of kinds) {
        if (kind === 'echo' && mode === 'tcp') continue;
        if (opts.tag && mode === 'tcp') continue; // RRL never looks at TCP
        const label = `${kind}${kind === 'popdns' ? ` ×${opts.workers}` : ''}${opts.tag ? ` ${opts.tag}` : ''} ${mode}`;
        const s = await startServer(kind, zoneDir, { ...opts, work });
        const before = tree(s.pid).cpu;
        const c0 = cpuClock();
        const r = dnsperf(s.port, queries, mode, SECONDS);
        const cpu = tree(s.pid).cpu - before;
        const c1 = cpuClock();
        // CPU that other work on the machine took meanwhile (cores, averaged over the round).
        const other = (c1.machine - c0.machine - cpu - (c1.kids - c0.kids) - (c1.self - c0.self)) / SECONDS;
        await s.stop();
        const e = results.get(label) ?? {
          qps: [],
          perCpu: [],
          lost: [],
          noerror: [],
          nxdomain: [],
          other: [],
        };
        e.qps.push(r.qps);
        e.perCpu.push(cpu > 0 ? r.completed / cpu : 0);
        e.lost.push(r.lost);
        e.other.push(Math.max(0, other));
        e.noerror.push(r.noerror);
        e.nxdomain.push(r.nxdomain);
        results.set(label, e);
        process.stderr.write(
          `  round ${round + 1}/${ROUNDS} ${label}: ${fmt(r.qps)} qps, ${fmt(cpu, 2)} cpu-s, lost ${r.lost}, other load ${fmt(Math.max(0, other), 2)} cores\n`,
        );
      }
    }
  }
  return results;
}

async function main() {
  if (!existsSync('dist/cli.js')) throw new Error('run `npm run build` first');
  if (!has('dnsperf')) throw new Error('dnsperf is not installed: apt-get install dnsperf nsd knot');
  const zoneDir = join(work, 'zones');
  mkdirSync(zoneDir);
  realisticZone(zoneDir, 2000);
  const queries = join(work, 'queries.txt');
  queryFile(queries, 2000, 100_000);
  const node = process.version;
  process.stderr.write(
    `bench: ${CORES} cores, Node ${node}, ${ROUNDS} rounds × ${SECONDS} s, server on CPU 0, dnsperf on CPU 1\n`,
  );
  const results = THROUGHPUT ? await throughput(zoneDir, queries) : new Map();
  const get = (label, key) => median(results.get(label)?.[key] ?? []);
  const lines = [];
  lines.push(
    `popdns bench — ${new Date().toISOString().slice(0, 16)}Z, ${cpus()[0]?.model ?? 'cpu'} × ${CORES}, Node ${node}`,
  );
  lines.push('');
  lines.push(
    '| server | transport | QPS | answers / server CPU-s | lost | NOERROR / NXDOMAIN | other load (cores) |',
  );
  lines.push('|---|---|---:|---:|---:|---|---:|');
  for (const [label] of results) {
    const [name, mode] = [label.slice(0, label.lastIndexOf(' ')), label.slice(label.lastIndexOf(' ') + 1)];
    lines.push(
      `| ${name} | ${mode} | ${fmt(get(label, 'qps'))} | ${fmt(get(label, 'perCpu'))} | ${fmt(get(label, 'lost'))} | ${fmt(get(label, 'noerror'))} / ${fmt(get(label, 'nxdomain'))} | ${fmt(get(label, 'other'), 2)} |`,
    );
  }
  const ratio = (a, b, key) => {
    const x = get(a, key);
    const y = get(b, key);
    return x && y ? fmt(x / y, 2) : 'n/a';
  };
  lines.push('');
  lines.push('| ratio | UDP answers / CPU-s | UDP QPS | TCP QPS |');
  lines.push('|---|---:|---:|---:|');
  lines.push(
    `| popdns / echo ceiling | ${ratio('popdns ×1 udp', 'echo udp', 'perCpu')} | ${ratio('popdns ×1 udp', 'echo udp', 'qps')} | |`,
  );
  lines.push(
    `| popdns / NSD | ${ratio('popdns ×1 udp', 'nsd udp', 'perCpu')} | ${ratio('popdns ×1 udp', 'nsd udp', 'qps')} | ${ratio('popdns ×1 tcp', 'nsd tcp', 'qps')} |`,
  );
  lines.push(
    `| popdns / Knot | ${ratio('popdns ×1 udp', 'knot udp', 'perCpu')} | ${ratio('popdns ×1 udp', 'knot udp', 'qps')} | ${ratio('popdns ×1 tcp', 'knot tcp', 'qps')} |`,
  );
  lines.push(
    `| popdns RRL on (no limiting) / off | ${ratio('popdns ×1 rrl udp', 'popdns ×1 udp', 'perCpu')} | ${ratio('popdns ×1 rrl udp', 'popdns ×1 udp', 'qps')} | |`,
  );
  lines.push(
    `| popdns ×2 / ×1 workers | ${ratio('popdns ×2 udp', 'popdns ×1 udp', 'perCpu')} | ${ratio('popdns ×2 udp', 'popdns ×1 udp', 'qps')} | ${ratio('popdns ×2 tcp', 'popdns ×1 tcp', 'qps')} |`,
  );
  if (BIG) {
    const rows = await bigZoneRows(work);
    lines.push('');
    lines.push(...bigZoneTable(rows));
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
