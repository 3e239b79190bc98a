// @ts-check
/**
 * `npm run bench`: popdns beside NSD, Knot and a bare Node UDP echo (the ceiling for any pure-Node
 * server), on the same zone and query file, in one run. dnsperf saturates a core on these machines, so
 * the robust number is answers per server CPU-second (utime+stime of the server's process tree from
 * /proc), reported with QPS; ratios are what to compare across runs. Everything runs on 127.0.0.1;
 * every server this starts is stopped by PID.
 *
 * Env: BENCH_SECONDS (per round, default 5), BENCH_ROUNDS (default 3), BENCH_BIG (0 skips the big zone),
 * BENCH_BIG_RECORDS (default 1000000), BENCH_TCP (0 skips TCP), BENCH_THROUGHPUT (0 skips the dnsperf part).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { bigZone, ORIGIN, queryFile, realisticZone } from './gen.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BIG = process.env.BENCH_BIG !== '0';
const BIG_RECORDS = Number(process.env.BENCH_BIG_RECORDS ?? 1_000_000);
const TCP = process.env.BENCH_TCP !== '0';
const THROUGHPUT = process.env.BENCH_THROUGHPUT !== '0';
const CORES = cpus().length;
const TICK = 100; // getconf CLK_TCK on Linux
const has = (cmd) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const pin = (cpu, cmd, args) =>
  CORES >= 2 && has('taskset') ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
const cleanup = () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
};
process.on('exit', cleanup);
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});

const work = mkdtempSync(join(tmpdir(), 'popdns-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
let nextPort = 25000 + Math.floor(Math.random() * 20000);

/** Sum of utime+stime (seconds) and VmRSS (bytes) over a process and its descendants. */
function tree(pid) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      const ppid = Number(f[1]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {
      // the process ended while we were reading /proc
    }
  }
  let cpu = 0;
  let rss = 0;
  const visit = (p) => {
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      cpu += (Number(f[11]) + Number(f[12])) / TICK;
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) rss += Number(m[1]) * 1024;
    } catch {
      // the process ended while we were reading /proc
    }
    for (const k of kids.get(p) ?? []) visit(k);
  };
  visit(pid);
  return { cpu, rss };
}

function udpAsk(port, name, type = 6) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const labels = name.split('.').filter(Boolean);
    const q = Buffer.concat([
      Buffer.from([0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
      ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
      Buffer.from([0, 0, type, 0, 1]),
    ]);
    const timer = setTimeout(() => {
      s.close();
      resolve(false);
    }, 200);
    s.on('message', () => {
      clearTimeout(timer);
      s.close();
      resolve(true);
    });
    s.send(q, port, '127.0.0.1');
  });
}

async function startServer(kind, zoneDir, opts = {}) {
  const port = nextPort++;
  const dir = mkdtempSync(join(work, `${kind}-`));
  let cmd;
  let args;
  if (kind === 'popdns') {
    cmd = process.execPath;
    args = [
      'dist/cli.js',
      'serve',
      '--zones',
      zoneDir,
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics',
      'off',
      '--workers',
      String(opts.workers ?? 1),
    ];
  } else if (kind === 'nsd') {
    const zones = readdirSync(zoneDir).filter((f) => f.endsWith('.zone'));
    writeFileSync(
      join(dir, 'nsd.conf'),
      [
        'server:',
        `  port: ${port}`,
        '  ip-address: 127.0.0.1',
        '  server-count: 1',
        '  username: ""',
        `  zonesdir: "${zoneDir}"`,
        `  pidfile: "${dir}/nsd.pid"`,
        `  xfrdfile: "${dir}/xfrd.state"`,
        `  xfrdir: "${dir}"`,
        `  zonelistfile: "${dir}/zone.list"`,
        '  database: ""',
        `  logfile: "${dir}/nsd.log"`,
        '  rrl-ratelimit: 0',
        '  verbosity: 0',
        'remote-control:',
        '  control-enable: no',
        ...zones.flatMap((f) => ['zone:', `  name: ${f.replace(/zone$/, '')}`, `  zonefile: ${f}`]),
      ].join('\n'),
    );
    cmd = 'nsd';
    args = ['-d', '-c', join(dir, 'nsd.conf')];
  } else if (kind === 'knot') {
    const zones = readdirSync(zoneDir).filter((f) => f.endsWith('.zone'));
    writeFileSync(
      join(dir, 'knot.conf'),
      [
        'server:',
        `  listen: 127.0.0.1@${port}`,
        `  rundir: ${dir}`,
        '  udp-workers: 1',
        '  tcp-workers: 1',
        '  background-workers: 1',
        'database:',
        `  storage: ${dir}`,
        'log:',
        '  - target: stderr',
        '    any: error',
        'template:',
        '  - id: default',
        `    storage: ${zoneDir}`,
        '    semantic-checks: off',
        '    zonefile-sync: -1',
        '    journal-content: none',
        'zone:',
        ...zones.flatMap((f) => [`  - domain: ${f.replace(/zone$/, '')}`, `    file: ${f}`]),
      ].join('\n'),
    );
    cmd = 'knotd';
    args = ['-c', join(dir, 'knot.conf')];
  } else {
    cmd = process.execPath;
    args = ['bench/echo.js', String(port)];
  }
  const [c, a] = pin(0, cmd, args);
  const t0 = Date.now();
  const child = spawn(c, a, { stdio: ['ignore', 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  const probe = opts.probe ?? `${ORIGIN}`;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${kind} exited: ${stderr.slice(-500)}`);
    if (await udpAsk(port, probe)) break;
    if (Date.now() - t0 > 600_000) throw new Error(`${kind} not answering after 600 s`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const ready = (Date.now() - t0) / 1000;
  return {
    kind,
    port,
    pid: child.pid ?? 0,
    child,
    ready,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve(undefined);
        child.once('exit', () => {
          children.delete(child);
          resolve(undefined);
        });
        child.kill(kind === 'popdns' && (opts.workers ?? 1) > 1 ? 'SIGINT' : 'SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 8000).unref();
      }),
  };
}

function dnsperf(port, queries, mode, seconds) {
  const args = ['-s', '127.0.0.1', '-p', String(port), '-d', queries, '-l', String(seconds), '-t', '2'];
  if (mode === 'tcp') args.push('-m', 'tcp', '-c', '8', '-q', '64');
  else args.push('-c', '1', '-q', '200');
  const [c, a] = pin(1, 'dnsperf', args);
  const out = execFileSync(c, a, { encoding: 'utf8', timeout: (seconds + 30) * 1000 });
  const num = (re) => Number(re.exec(out)?.[1] ?? 0);
  return {
    sent: num(/Queries sent:\s+(\d+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    qps: num(/Queries per second:\s+([\d.]+)/),
    noerror: num(/NOERROR (\d+)/),
    nxdomain: num(/NXDOMAIN (\d+)/),
  };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : 0;
};
const fmt = (n, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : 'n/a';

async function throughput(zoneDir, queries) {
  const kinds = [
    ['popdns', { workers: 1 }],
    ['popdns', { workers: 2 }],
    ['echo', {}],
  ];
  if (has('nsd')) kinds.push(['nsd', {}]);
  if (has('knotd')) kinds.push(['knot', {}]);
  const modes = TCP ? ['udp', 'tcp'] : ['udp'];
  /** @type {Map<string, {qps:number[], perCpu:number[], lost:number[], noerror:number[], nxdomain:number[]}>} */
  const results = new Map();
  for (let round = 0; round < ROUNDS; round++) {
    for (const mode of modes) {
      for (const [kind, opts] of kinds) {
        if (kind === 'echo' && mode === 'tcp') continue;
        const label = `${kind}${kind === 'popdns' ? ` ×${opts.workers}` : ''} ${mode}`;
        const s = await startServer(kind, zoneDir, opts);
        const before = tree(s.pid).cpu;
        const r = dnsperf(s.port, queries, mode, SECONDS);
        const cpu = tree(s.pid).cpu - before;
        await s.stop();
        const e = results.get(label) ?? { qps: [], perCpu: [], lost: [], noerror: [], nxdomain: [] };
        e.qps.push(r.qps);
        e.perCpu.push(cpu > 0 ? r.completed / cpu : 0);
        e.lost.push(r.lost);
        e.noerror.push(r.noerror);
        e.nxdomain.push(r.nxdomain);
        results.set(label, e);
        process.stderr.write(
          `  round ${round + 1}/${ROUNDS} ${label}: ${fmt(r.qps)} qps, ${fmt(cpu, 2)} cpu-s, lost ${r.lost}\n`,
        );
      }
    }
  }
  return results;
}

async function bigZoneTable() {
  const dir = join(work, 'big');
  process.stderr.write(`generating a ${fmt(BIG_RECORDS)}-record zone…\n`);
  await bigZone(dir, BIG_RECORDS, true);
  const rows = [];
  const probe = `h${BIG_RECORDS - 1}.big.test.`;
  const measure = async (label, kind, zdir) => {
    const s = await startServer(kind, zdir, { probe, workers: 1 });
    await new Promise((r) => setTimeout(r, 500));
    const { rss } = tree(s.pid);
    await s.stop();
    rows.push({ label, ready: s.ready, rss });
    process.stderr.write(`  ${label}: first answer after ${fmt(s.ready, 1)} s, ${fmt(rss / 2 ** 20)} MiB\n`);
  };
  await measure('popdns (RFC 1035)', 'popdns', dir);
  await measure('popdns (YAML)', 'popdns', join(dir, 'yaml'));
  if (has('nsd')) await measure('nsd', 'nsd', dir);
  if (has('knotd')) await measure('knot', 'knot', dir);
  return rows;
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
  lines.push('| server | transport | QPS | answers / server CPU-s | lost | NOERROR / NXDOMAIN |');
  lines.push('|---|---|---:|---:|---:|---|');
  for (const [label] of results) {
    const [name, mode] = [label.slice(0, label.lastIndexOf(' ')), label.slice(label.lastIndexOf(' ') + 1)];
    lines.push(
      `| ${name} | ${mode} | ${fmt(get(label, 'qps'))} | ${fmt(get(label, 'perCpu'))} | ${fmt(get(label, 'lost'))} | ${fmt(get(label, 'noerror'))} / ${fmt(get(label, 'nxdomain'))} |`,
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
    `| popdns ×2 / ×1 workers | ${ratio('popdns ×2 udp', 'popdns ×1 udp', 'perCpu')} | ${ratio('popdns ×2 udp', 'popdns ×1 udp', 'qps')} | ${ratio('popdns ×2 tcp', 'popdns ×1 tcp', 'qps')} |`,
  );
  if (BIG) {
    const rows = await bigZoneTable();
    const knot = rows.find((r) => r.label === 'knot');
    lines.push('');
    lines.push(
      `| ${fmt(BIG_RECORDS)} A records | first answer (s) | memory (MiB) | time / Knot | memory / Knot |`,
    );
    lines.push('|---|---:|---:|---:|---:|');
    for (const r of rows) {
      lines.push(
        `| ${r.label} | ${fmt(r.ready, 1)} | ${fmt(r.rss / 2 ** 20)} | ${knot ? fmt(r.ready / knot.ready, 2) : 'n/a'} | ${knot ? fmt(r.rss / knot.rss, 2) : 'n/a'} |`,
      );
    }
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
