// @ts-check
/**
 * A CPU profile of popdns under the UDP load of the bench: `node --cpu-prof dist/cli.js serve
 * --workers 1` on the bench zone, dnsperf with the bench query mix for PROFILE_SECONDS (default 15),
 * then SIGTERM (the profile is written when the process exits after its drain). Prints the self time
 * grouped — V8 GC, V8/native (program), Node's dgram receive/send path, other Node internals, popdns
 * by file — and the top self-time functions. Only samples taken while dnsperf ran count (startup and
 * the drain are left out, by time since the profile started); idle time is shown but left out of the
 * percentages. `node bench/profile.js FILE.cpuprofile` summarises an existing profile (all samples).
 *
 *   node bench/profile.js                    # keeps the .cpuprofile when PROFILE_KEEP=DIR is set
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ORIGIN, queryFile, realisticZone } from './gen.js';
import { dnsperfArgs, fmt, has, parseDnsperf, startServer, tree, workDir } from './lib.js';

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 15);
/**
 * PROFILE_DO=0|1: the bench zone signed at load (`--keys`, a fresh ECDSAP256SHA256 CSK) and queries
 * with EDNS (dnsperf -e) or with the DO bit (-D); unset: the unsigned zone, queries without EDNS.
 */
const DO = process.env.PROFILE_DO === '1' ? 1 : process.env.PROFILE_DO === '0' ? 0 : null;
/** `echo` profiles bench/echo.js instead: the same dgram path with no DNS work, for comparison. */
const SERVER = process.env.PROFILE_SERVER === 'echo' ? 'echo' : 'popdns';

/** Which group a profile node's self time belongs to. */
function group(cf) {
  const { functionName: fn, url } = cf;
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'V8: garbage collector';
  if (fn === '(program)') return 'V8/native: (program)';
  if (fn === '(root)') return 'V8/native: (program)';
  if (/\/dist\//.test(url) && !/node_modules/.test(url)) return `popdns: ${url.replace(/^.*\/dist\//, '')}`;
  if (/node:dgram|internal\/dgram/.test(url)) return 'Node: dgram (send/receive)';
  if (url === '' && /^(send|recvmsg|sendto|onmessage|bind)/i.test(fn)) return 'Node: dgram (send/receive)';
  if (/node_modules/.test(url)) return 'dependencies (node_modules)';
  if (/node:internal\/(buffer)|node:buffer/.test(url)) return 'Node: buffer';
  if (/node:events|internal\/events/.test(url)) return 'Node: events (emit)';
  if (/node:perf_hooks|internal\/perf/.test(url) || (url === '' && fn === 'now'))
    return 'Node: perf_hooks (performance.now)';
  if (/node:net|internal\/net|internal\/(dns|util)|node:dns/.test(url)) return 'Node: net/address checks';
  if (/internal\/async_hooks|internal\/process\/task_queues/.test(url) || fn === 'runMicrotasks')
    return 'Node: async_hooks/nextTick';
  if (url === '') return `native: ${fn || '(anonymous)'}`;
  if (/^node:/.test(url)) return `Node: other (${url.replace(/^node:(internal\/)?/, '')})`;
  return `other: ${url}`;
}

/** The broad buckets the groups add up to. */
function bucket(g) {
  if (g.startsWith('popdns:')) return 'popdns (handler, parser, engine, writer)';
  if (g === 'Node: buffer') return 'Node Buffer copies called by popdns';
  if (g === 'V8: garbage collector') return 'V8 garbage collector';
  if (g === 'V8/native: (program)') return 'native outside JS (libuv epoll + recvmsg, C++ callbacks into JS)';
  if (/dgram|net\/address|async_hooks|events|perf_hooks/.test(g))
    return 'Node dgram path (Socket.send → doSend incl. the sendto syscall; onMessage; nextTick)';
  return 'everything else (startup, modules, ...)';
}

/**
 * Self time by group and function. `window` = [from, to] seconds after the profile starts: only samples
 * in it count (the load phase, without startup and drain).
 */
export function summarise(profile, window = [0, Infinity]) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  let t = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i] ?? 0;
    const id = profile.samples[i];
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (t / 1e6 < window[0] || t / 1e6 > window[1]) continue;
    self.set(id, (self.get(id) ?? 0) + dt);
  }
  const groups = new Map();
  const fns = new Map();
  let busy = 0;
  let idle = 0;
  for (const [id, us] of self) {
    const n = byId.get(id);
    const g = group(n.callFrame);
    groups.set(g, (groups.get(g) ?? 0) + us);
    if (g === 'idle') idle += us;
    else busy += us;
    const cf = n.callFrame;
    const k =
      `${cf.functionName || '(anonymous)'} ${cf.url ? `${cf.url.replace(/^.*\/dist\//, 'dist/').replace(/^file:\/\//, '')}:${cf.lineNumber + 1}` : ''}`.trim();
    if (g !== 'idle') fns.set(k, (fns.get(k) ?? 0) + us);
  }
  const pct = (us) => `${fmt((100 * us) / busy, 1)}%`;
  const lines = [
    `busy ${fmt(busy / 1e6, 2)} s, idle ${fmt(idle / 1e6, 2)} s (sampled)`,
    '',
    '| group (self time) | ms | share of busy time |',
    '|---|---:|---:|',
  ];
  const sorted = [...groups].filter(([g]) => g !== 'idle').sort((a, b) => b[1] - a[1]);
  for (const [g, us] of sorted.slice(0, 15)) lines.push(`| ${g} | ${fmt(us / 1000)} | ${pct(us)} |`);
  const rest = sorted.slice(15).reduce((a, [, us]) => a + us, 0);
  if (rest) lines.push(`| (${sorted.length - 15} more groups) | ${fmt(rest / 1000)} | ${pct(rest)} |`);
  const buckets = new Map();
  for (const [g, us] of sorted) buckets.set(bucket(g), (buckets.get(bucket(g)) ?? 0) + us);
  lines.push('', '| bucket | share of busy time |', '|---|---:|');
  for (const [b, us] of [...buckets].sort((a, b) => b[1] - a[1])) lines.push(`| ${b} | ${pct(us)} |`);
  lines.push('', '| top functions (self time) | ms | share |', '|---|---:|---:|');
  for (const [f, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, 20))
    lines.push(`| \`${f}\` | ${fmt(us / 1000)} | ${pct(us)} |`);
  return lines;
}

async function main() {
  if (process.argv[2]) {
    // Summarise an existing profile.
    process.stdout.write(`${summarise(JSON.parse(readFileSync(process.argv[2], 'utf8'))).join('\n')}\n`);
    return;
  }
  if (!existsSync('dist/cli.js')) throw new Error('run `npm run build` first (from the repository root)');
  if (!has('dnsperf')) throw new Error('dnsperf is not installed: apt-get install dnsperf');
  const work = workDir('popdns-profile-');
  const zdir = join(work, 'zones');
  mkdirSync(zdir);
  realisticZone(zdir, 2000);
  const queries = join(work, 'queries.txt');
  queryFile(queries, 2000, 100_000);
  const pdir = join(work, 'prof');
  mkdirSync(pdir);
  const keys = join(work, 'keys');
  if (DO !== null)
    execFileSync(process.execPath, ['dist/cli.js', 'keygen', ORIGIN, '--keys', keys], { stdio: 'ignore' });
  const s = await startServer(SERVER, zdir, {
    workers: 1,
    work,
    nodeArgs: ['--cpu-prof', '--cpu-prof-dir', pdir],
    probe: ORIGIN,
    ...(DO !== null ? { args: ['--keys', keys] } : {}),
  });
  const before = tree(s.pid).cpu;
  const [c, a] = dnsperfArgs(s.port, queries, 'udp', SECONDS, 2, DO === null ? [] : DO ? ['-D'] : ['-e']);
  const r = parseDnsperf(execFileSync(c, a, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 }));
  const cpu = tree(s.pid).cpu - before;
  await s.stop();
  const files = readdirSync(pdir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error('no .cpuprofile written');
  const file = join(pdir, files[0]);
  if (process.env.PROFILE_KEEP) {
    mkdirSync(process.env.PROFILE_KEEP, { recursive: true });
    copyFileSync(file, join(process.env.PROFILE_KEEP, files[0]));
  }
  const lines = [
    `${SERVER === 'echo' ? 'bench/echo.js' : 'popdns --workers 1'} CPU profile — ${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, UDP${DO === null ? '' : `, signed zone, EDNS DO=${DO}`}, dnsperf -c 1 -q 200 for ${SECONDS} s (with the profiler on)`,
    `${fmt(r.qps)} QPS, ${fmt(r.completed / cpu)} answers per server CPU-s, lost ${r.lost}`,
    '',
    ...summarise(JSON.parse(readFileSync(file, 'utf8')), [s.ready + 0.3, s.ready + SECONDS - 0.3]),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`profile: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
