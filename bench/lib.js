// @ts-check
/**
 * What the bench scripts share: starting popdns, NSD, Knot and the echo server on 127.0.0.1 with a
 * bounded wait for the first real answer, reading CPU time and memory of a process tree from /proc,
 * and running dnsperf. Every process started here is tracked and killed by PID on exit.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ORIGIN } from './gen.js';

export const CORES = cpus().length;
const TICK = 100; // getconf CLK_TCK on Linux

export const has = (cmd) => {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

/** `taskset -c cpu cmd args` where there are at least 2 cores, else the command as is. */
export const pin = (cpu, cmd, args) =>
  CORES >= 2 && has('taskset') ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];

/** @type {Set<import('node:child_process').ChildProcess>} */
const children = new Set();
const cleanup = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
};
process.on('exit', cleanup);
process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
process.on('SIGTERM', () => {
  cleanup();
  process.exit(143);
});

/** A temporary directory, removed on exit. */
export function workDir(prefix = 'popdns-bench-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** BENCH_PORTS=LOW-HIGH keeps the servers' ports in that range (several benches on one machine). */
const PORT_RANGE = /^(\d+)-(\d+)$/.exec(process.env.BENCH_PORTS ?? '');
let nextPort = PORT_RANGE
  ? Number(PORT_RANGE[1]) + Math.floor(Math.random() * (Number(PORT_RANGE[2]) - Number(PORT_RANGE[1]) - 20))
  : 25000 + Math.floor(Math.random() * 20000);

/** Numeric `Key: N kB` fields of /proc/PID/status (bytes), or 0. */
function statusKb(text, key) {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(text);
  return m ? Number(m[1]) * 1024 : 0;
}

/** VmRSS and VmHWM (bytes) of one process. */
export function memory(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { rss: statusKb(s, 'VmRSS'), hwm: statusKb(s, 'VmHWM') };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0: `5` in /proc/PID/clear_refs). */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Parent PID → child PIDs, from /proc. */
function childrenMap() {
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
  return kids;
}

/** A process and all its descendants (popdns --workers N: the primary and its workers). */
export function descendants(pid) {
  const kids = childrenMap();
  const out = [];
  const visit = (p) => {
    out.push(p);
    for (const c of kids.get(p) ?? []) visit(c);
  };
  visit(pid);
  return out;
}

/**
 * Over a process and its descendants: utime+stime (s), VmRSS, VmHWM and PSS (bytes; PSS splits pages
 * shared after fork — NSD's server children — between the processes that share them, so it doesn't
 * count them twice the way summed RSS does).
 */
export function tree(pid) {
  const kids = childrenMap();
  let cpu = 0;
  let rss = 0;
  let hwm = 0;
  let pss = 0;
  let procs = 0;
  const visit = (p) => {
    try {
      const st = readFileSync(`/proc/${p}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      cpu += (Number(f[11]) + Number(f[12])) / TICK;
      const m = memory(p);
      rss += m.rss;
      hwm += m.hwm;
      try {
        pss += statusKb(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'), 'Pss');
      } catch {
        // no smaps_rollup (kernel < 4.14): PSS stays partial
      }
      procs++;
    } catch {
      // the process ended while we were reading /proc
    }
    for (const k of kids.get(p) ?? []) visit(k);
  };
  visit(pid);
  return { cpu, rss, hwm, pss, procs };
}

/** A query for `name`/`type` (class IN, no EDNS) as bytes. */
export function queryBytes(name, type, id = 0x1234) {
  const labels = name.split('.').filter(Boolean);
  return Buffer.concat([
    Buffer.from([id >> 8, id & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, type, 0, 1]),
  ]);
}

/** One UDP query to 127.0.0.1:port; resolves with { rcode, aa, an } or null after `timeoutMs`. */
export function udpAsk(port, name, type = 6, timeoutMs = 200) {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const done = (v) => {
      clearTimeout(timer);
      s.close();
      resolve(v);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    s.on('error', () => done(null));
    s.on('message', (m) => {
      if (m.length < 12) return;
      done({ rcode: m[3] & 15, aa: (m[2] & 4) !== 0, an: (m[6] << 8) | m[7] });
    });
    s.send(queryBytes(name, type), port, '127.0.0.1');
  });
}

export class StartTimeout extends Error {}

/**
 * @typedef {{ workers?: number, probe?: string, probeType?: number, timeoutSec?: number,
 *   nodeArgs?: string[], work?: string, pin?: boolean, stdout?: boolean }} StartOpts
 */

/**
 * Starts a server on a fresh port of 127.0.0.1 (pinned to CPU 0) and waits for its first real answer:
 * NOERROR, AA, at least one answer record for `probe`/`probeType` (default: the bench zone's SOA) — a
 * server that answers SERVFAIL or REFUSED while it is still loading is not ready. Rejects with
 * StartTimeout (after killing it) when that takes more than `timeoutSec`.
 *
 * @param {'popdns'|'nsd'|'knot'|'echo'} kind
 * @param {string} zoneDir
 * @param {StartOpts} [opts]
 */
export async function startServer(kind, zoneDir, opts = {}) {
  // Another program on the machine (a test run) may hold the port we picked: try the next one.
  for (let attempt = 0; ; attempt++) {
    try {
      return await startOnce(kind, zoneDir, opts);
    } catch (e) {
      if (!(e instanceof PortInUse) || attempt >= 4) throw e;
    }
  }
}

class PortInUse extends Error {}

/** @param {'popdns'|'nsd'|'knot'|'echo'} kind @param {string} zoneDir @param {StartOpts} opts */
async function startOnce(kind, zoneDir, opts) {
  const port = nextPort++;
  const dir = mkdtempSync(join(opts.work ?? tmpdir(), `${kind}-`));
  const timeoutSec = opts.timeoutSec ?? 180;
  let cmd;
  let args;
  if (kind === 'popdns') {
    cmd = process.execPath;
    args = [
      ...(opts.nodeArgs ?? []),
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
      ...(opts.args ?? []),
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
    args = [...(opts.nodeArgs ?? []), 'bench/echo.js', String(port)];
  }
  const [c, a] = opts.pin === false ? [cmd, args] : pin(0, cmd, args);
  const t0 = Date.now();
  const child = spawn(c, a, { stdio: ['ignore', opts.stdout ? 'pipe' : 'ignore', 'pipe'] });
  children.add(child);
  let stderr = '';
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  let stdout = '';
  child.stdout?.on('data', (d) => {
    stdout += d;
  });
  const probe = opts.probe ?? ORIGIN;
  const probeType = opts.probeType ?? 6;
  const stop = () =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) {
        children.delete(child);
        return resolve(undefined);
      }
      const kill = setTimeout(() => child.kill('SIGKILL'), 10_000);
      child.once('exit', () => {
        clearTimeout(kill);
        children.delete(child);
        resolve(undefined);
      });
      child.kill(kind === 'popdns' && (opts.workers ?? 1) > 1 ? 'SIGINT' : 'SIGTERM');
    });
  for (;;) {
    if (child.exitCode !== null) {
      children.delete(child);
      if (/EADDRINUSE|already in use/i.test(stderr)) throw new PortInUse(`${kind}: port ${port} in use`);
      throw new Error(`${kind} exited: ${stderr.slice(-500)}`);
    }
    const r = await udpAsk(port, probe, probeType);
    if (r && (kind === 'echo' || (r.rcode === 0 && r.aa && r.an > 0))) break;
    if (Date.now() - t0 > timeoutSec * 1000) {
      child.kill('SIGKILL');
      await stop();
      throw new StartTimeout(`${kind} gave no answer within ${timeoutSec} s`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  const ready = (Date.now() - t0) / 1000;
  // With `taskset`, the server is the child of taskset's exec: same PID.
  return { kind, port, pid: child.pid ?? 0, child, ready, stderr: () => stderr, stdout: () => stdout, stop };
}

/**
 * A bounded dnsperf run against 127.0.0.1:port (pinned to CPU 1). UDP: 1 client, 200 outstanding;
 * TCP: 8 clients, 64 outstanding each. `extra` adds arguments (e.g. -S 1 for per-second statistics).
 */
export function dnsperfArgs(port, queries, mode, seconds, timeout = 2, extra = []) {
  const args = [
    '-s',
    '127.0.0.1',
    '-p',
    String(port),
    '-d',
    queries,
    '-l',
    String(seconds),
    '-t',
    String(timeout),
  ];
  if (mode === 'tcp') args.push('-m', 'tcp', '-c', '8', '-q', '64');
  else args.push('-c', '1', '-q', '200');
  return pin(1, 'dnsperf', [...args, ...extra]);
}

export function parseDnsperf(out) {
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

export function dnsperf(port, queries, mode, seconds) {
  const [c, a] = dnsperfArgs(port, queries, mode, seconds);
  return parseDnsperf(execFileSync(c, a, { encoding: 'utf8', timeout: (seconds + 30) * 1000 }));
}

/**
 * CPU-seconds used by the whole machine (from /proc/stat, all CPUs, user + nice + system) and
 * by this process's waited-for children (dnsperf run with execFileSync), to tell how much CPU other
 * work took during a measurement: machine − server − dnsperf − this script.
 */
export function cpuClock() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  // user + nice + system: where processes' utime and stime go (irq, softirq and steal are not theirs).
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0);
  const st = readFileSync('/proc/self/stat', 'utf8');
  const g = st.slice(st.lastIndexOf(')') + 2).split(' ');
  const self = (Number(g[11]) + Number(g[12])) / TICK;
  const kids = (Number(g[13]) + Number(g[14])) / TICK;
  return { machine: busy / TICK, self, kids };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)] : 0;
};

export const fmt = (n, d = 0) =>
  Number.isFinite(n)
    ? n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : 'n/a';

export const MiB = (bytes) => bytes / 2 ** 20;
