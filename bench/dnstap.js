// @ts-check
/**
 * `node bench/dnstap.js`: the cost of dnstap. popdns --workers 1 over UDP (dnsperf, as in run.js)
 * with dnstap off, on for every query (AUTH_QUERY + AUTH_RESPONSE), and sampled 1/100, writing to a
 * real collector (fstrm_capture into a file on the work dir), in interleaved rounds. Reports the
 * median QPS and answers per popdns CPU-second (the collector's CPU is not counted), and the messages
 * fstrm_capture wrote. Env: BENCH_SECONDS (5), BENCH_ROUNDS (3). Needs dnsperf and fstrm-bin.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { queryFile, realisticZone } from './gen.js';
import { dnsperf, fmt, has, median, startServer, tree, workDir } from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

async function main() {
  for (const t of ['dnsperf', 'fstrm_capture']) if (!has(t)) throw new Error(`${t} is not installed`);
  const work = workDir('popdns-bench-dnstap-');
  const zoneDir = join(work, 'zones');
  mkdirSync(zoneDir);
  realisticZone(zoneDir, 2000);
  const queries = join(work, 'queries.txt');
  queryFile(queries, 2000, 100_000);
  const sock = join(work, 'tap.sock');
  const modes = [
    ['off', null],
    ['every query', 1],
    ['1/100', 100],
  ];
  /** @type {Map<string, {qps:number[], perCpu:number[], bytes:number[]}>} */
  const res = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const [label, sample] of modes) {
      const args = [];
      const file = join(work, `tap-${round}-${sample}.fstrm`);
      let cap = null;
      if (sample !== null) {
        const cfg = join(work, `dnstap-${sample}.yaml`);
        writeFileSync(
          cfg,
          `dnstap: { socket: ${sock}, messages: [auth-query, auth-response], sample: ${sample} }\n`,
        );
        args.push('--config', cfg);
        cap = spawn('fstrm_capture', ['-t', 'protobuf:dnstap.Dnstap', '-u', sock, '-w', file], {
          stdio: 'ignore',
        });
        await new Promise((r) => setTimeout(r, 300));
      }
      const s = await startServer('popdns', zoneDir, { workers: 1, args, work });
      await new Promise((r) => setTimeout(r, 300)); // the dnstap handshake
      const before = tree(s.pid).cpu;
      const r = dnsperf(s.port, queries, 'udp', SECONDS);
      const cpu = tree(s.pid).cpu - before;
      await s.stop();
      let bytes = 0;
      if (cap) {
        cap.kill('SIGINT');
        await new Promise((r) => cap.once('exit', r));
        bytes = statSync(file).size;
      }
      const e = res.get(/** @type {string} */ (label)) ?? { qps: [], perCpu: [], bytes: [] };
      e.qps.push(r.qps);
      e.perCpu.push(cpu > 0 ? r.completed / cpu : 0);
      e.bytes.push(bytes);
      res.set(/** @type {string} */ (label), e);
      process.stderr.write(
        `  round ${round + 1}/${ROUNDS} dnstap ${label}: ${fmt(r.qps)} qps, ${fmt(cpu, 2)} cpu-s, ${fmt(bytes / 1e6, 1)} MB captured\n`,
      );
    }
  }
  const off = median(res.get('off')?.perCpu ?? []);
  const lines = [
    `popdns dnstap bench — ${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, ${ROUNDS} rounds × ${SECONDS} s, UDP`,
    '',
    '| dnstap | QPS | answers / popdns CPU-s | vs off | captured (MB, median) |',
    '|---|---:|---:|---:|---:|',
  ];
  for (const [label, e] of res) {
    const pc = median(e.perCpu);
    lines.push(
      `| ${label} | ${fmt(median(e.qps))} | ${fmt(pc)} | ${off ? fmt(pc / off, 2) : 'n/a'} | ${fmt(median(e.bytes) / 1e6, 1)} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.message : e}\n`);
  process.exit(1);
});
