// @ts-check
/**
 * YAML zone load vs the same zone as an RFC 1035 file (issue 15): `popdns check` on a big zone of
 * N names (BENCH_YAML_NAMES, default 200,000) as an RFC 1035 file, as YAML in the bench's flow form
 * (`h1: { A: 10.0.0.1 }`), and as YAML in block form (what `popdns convert` writes). The runs are
 * interleaved (zone, YAML, YAML block, zone, …) so a loaded machine slows them alike; each run is
 * measured by /usr/bin/time: CPU seconds (user + system) and peak RSS (VmHWM), with the 1-minute
 * load average at its start. BENCH_YAML_BEFORE=path/to/old/dist/cli.js adds an older build's YAML
 * load to the same rotation. Every run is bounded (BENCH_YAML_TIMEOUT, default 300 s).
 *
 *   npm run build && node bench/yamlload.js
 *   BENCH_YAML_NAMES=1000000 BENCH_YAML_ROUNDS=1 node bench/yamlload.js
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bigZone } from './gen.js';
import { fmt, workDir } from './lib.js';

const NAMES = Number(process.env.BENCH_YAML_NAMES ?? 200_000);
const ROUNDS = Number(process.env.BENCH_YAML_ROUNDS ?? 3);
const TIMEOUT = Number(process.env.BENCH_YAML_TIMEOUT ?? 300);
const BEFORE = process.env.BENCH_YAML_BEFORE;
const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

/** One `popdns check` run: CPU seconds, wall seconds, peak RSS in KiB, load at its start. */
function run(cli, file) {
  const load = loadavg()[0];
  const r = spawnSync('/usr/bin/time', ['-f', 'H5TIME %e %U %S %M', process.execPath, cli, 'check', file], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: TIMEOUT * 1000,
  });
  const m = /H5TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr ?? '');
  if (r.status !== 0 || !m) throw new Error(`check ${file} failed: ${r.status} ${r.stderr}`);
  return { wall: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), hwm: Number(m[4]), load };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const work = workDir();
  const dir = join(work, `yaml-${NAMES}`);
  process.stderr.write(`generating a ${fmt(NAMES)}-name zone in ${dir}…\n`);
  const origin = await bigZone(dir, NAMES, true);
  const zone = join(dir, `${origin}zone`);
  const flow = join(dir, 'yaml', `${origin}yaml`);
  // The block form: each `  hN: { A: x }` line as `  hN:\n    A: x`.
  const block = join(dir, `${origin}yml`);
  writeFileSync(
    block,
    readFileSync(flow, 'latin1').replace(
      /^( {2}[^\s:]+|\s{2}"@"): \{ (\w+): ([^}]+?) \}$/gm,
      '$1:\n    $2: $3',
    ),
    'latin1',
  );
  const kinds = [
    { label: 'RFC 1035 file', cli: CLI, file: zone },
    { label: 'YAML, flow form', cli: CLI, file: flow },
    { label: 'YAML, block form', cli: CLI, file: block },
  ];
  if (BEFORE) kinds.push({ label: 'YAML, flow form (before)', cli: BEFORE, file: flow });
  /** @type {Map<string, {wall: number, cpu: number, hwm: number, load: number}[]>} */
  const runs = new Map(kinds.map((k) => [k.label, []]));
  for (let round = 1; round <= ROUNDS; round++) {
    for (const k of kinds) {
      const r = run(k.cli, k.file);
      runs.get(k.label)?.push(r);
      process.stderr.write(
        `  round ${round} ${k.label}: ${fmt(r.cpu, 2)} CPU-s, ${fmt(r.wall, 2)} s wall, peak RSS ${fmt(r.hwm / 1024)} MiB, load ${fmt(r.load, 1)}\n`,
      );
    }
  }
  const base = runs.get(kinds[0].label) ?? [];
  const baseCpu = median(base.map((r) => r.cpu));
  const baseHwm = median(base.map((r) => r.hwm));
  const lines = [
    `\`popdns check\` on a ${fmt(NAMES)}-name zone, ${ROUNDS} interleaved rounds, medians (load: 1-min average at each run's start):`,
    '',
    '| file | CPU-s | × RFC 1035 | peak RSS MiB | × RFC 1035 | wall s | load |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const k of kinds) {
    const rs = runs.get(k.label) ?? [];
    const cpu = median(rs.map((r) => r.cpu));
    const hwm = median(rs.map((r) => r.hwm));
    lines.push(
      `| ${k.label} | ${fmt(cpu, 2)} | ${fmt(cpu / baseCpu, 2)} | ${fmt(hwm / 1024)} | ${fmt(hwm / baseHwm, 2)} | ${fmt(median(rs.map((r) => r.wall)), 2)} | ${rs.map((r) => fmt(r.load, 1)).join(', ')} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
