// @ts-check
/**
 * Micro-benchmarks: ns per operation for the hot path, bypassing sockets, and records per second for
 * the zone parsers. Run after `npm run build`:
 *
 *   node bench/micro.js            # the default set (about 10 minutes on a 2-vCPU machine: YAML is slow)
 *   node bench/micro.js udp,cold   # only those
 *   MICRO_RUNS=9 MICRO_RECORDS=100000 MICRO_YAML_RUNS=3 MICRO_TIMEOUT=900 node bench/micro.js
 *
 * - parseQuery: dist/wire/message.js parseQuery into one reused QueryInfo, over the bench query mix.
 * - Handler.handle: what the UDP socket's 'message' listener calls (src/server/server.ts bindUdp) to turn
 *   a query Buffer into a response Buffer. "warm" is the steady state (answer-cache hits); "cold" clears
 *   the answer cache before every pass, so each query runs the engine and fills the cache.
 * - resolve: the answer engine alone (query/engine.js), no encoding.
 * - Zone parsers: RFC 1035 master file and YAML on a generated zone (bench/gen.js bigZone), parse only
 *   and parse+build (what the server does per file on load and reload).
 *
 * Each benchmark runs in its own Node process (V8's type feedback and heap from one benchmark otherwise
 * move the next one's numbers by up to 2×), killed after MICRO_TIMEOUT s (900): a warm-up of at least
 * 1.5 s, then MICRO_RUNS timed passes (default 7; RFC 1035 parsers min(5, MICRO_RUNS), at least 3;
 * YAML MICRO_YAML_RUNS, 3, without a warm-up pass: one pass over 100,000 names takes minutes); the
 * median is printed with the spread (min–max). Names: parse udp edns tcp addr rrl cookie cold resolve zparse yparse
 * build zload, and yload (not in the default set). Numbers are for comparing runs on the same machine;
 * they are never asserted in tests.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Cookies } from '../dist/cookies/cookies.js';
import { RateLimiter, RRL_DEFAULTS } from '../dist/rrl/rrl.js';
import { Counters } from '../dist/server/counters.js';
import { Handler } from '../dist/server/handler.js';
import { parseQuery, QueryInfo } from '../dist/wire/message.js';
import { resolve } from '../dist/query/engine.js';
import { loadZoneFile } from '../dist/zone/load.js';
import { parseMasterFile } from '../dist/zone/masterfile.js';
import { parseYamlZone } from '../dist/zone/yamlzone.js';
import { buildZone } from '../dist/zone/zone.js';
import { ZoneSet } from '../dist/zone/zoneset.js';
import { nameFromText } from '../dist/wire/name.js';
import { bigZone, ORIGIN, queryFile, realisticZone } from './gen.js';

const RUNS = Number(process.env.MICRO_RUNS ?? 7);
const RECORDS = Number(process.env.MICRO_RECORDS ?? 100_000);
const NAMES = 2000;
const TYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 };

/** A query message (no EDNS, like dnsperf's default), or with an OPT record when `edns`. */
function query(id, name, type, edns = false) {
  const labels = name.split('.').filter(Boolean);
  const parts = [
    Buffer.from([id >> 8, id & 255, 0, 0, 0, 1, 0, 0, 0, 0, 0, edns ? 1 : 0]),
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])),
    Buffer.from([0, 0, type, 0, 1]),
  ];
  if (edns) parts.push(Buffer.from([0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]));
  return Buffer.concat(parts);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)];
};
const fmt = (n, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

/**
 * Times `pass()` (which performs `ops` operations): untimed passes for at least `warmMs` (and at least
 * one; none when `warmMs` < 0) so the JIT has settled, then `runs` timed passes. Returns ns/op, or ops/s when `rate`.
 */
function time(ops, pass, { warmMs = 1500, rate = false, runs = RUNS } = {}) {
  if (warmMs >= 0) {
    const w0 = performance.now();
    do pass();
    while (performance.now() - w0 < warmMs);
  }
  const xs = [];
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    pass();
    const ms = performance.now() - t0;
    xs.push(rate ? ops / (ms / 1000) : (ms * 1e6) / ops);
  }
  return xs;
}

/** Everything one benchmark needs, built from the files the parent generated in `dir`. */
function fixtures(dir) {
  const lines = readFileSync(join(dir, 'queries.txt'), 'utf8').trim().split('\n').slice(0, 20_000);
  const msgs = (edns) =>
    lines.map((l, i) => {
      const [n, t] = l.split(' ');
      return query((i * 7919) & 0xffff, n, TYPES[t], edns);
    });
  const built = loadZoneFile(join(dir, 'zones', `${ORIGIN}zone`));
  if (!built.zone) throw new Error('bench zone did not load');
  const zs = new ZoneSet([built.zone]);
  const cfg = { identity: 'bench', nsid: null, version: 'popdns bench', ednsUdpSize: 1232 };
  return { lines, msgs, zs, cfg };
}

/**
 * The benchmarks, each run in a fresh process (V8's type feedback and GC state from one benchmark
 * otherwise change the next one's numbers by up to 2×). Each returns { xs, unit, note }.
 */
const BENCHES = {
  parse: {
    name: 'parseQuery (reused QueryInfo)',
    run(dir) {
      const m = fixtures(dir).msgs(false);
      const q = new QueryInfo();
      let sink = 0;
      const xs = time(m.length * 10, () => {
        for (let k = 0; k < 10; k++) for (const x of m) sink += parseQuery(x, q);
      });
      return { xs, sink, note: 'header + question, hash of the lower-cased name' };
    },
  },
  ...Object.fromEntries(
    /** @type {[string, string, boolean, boolean, string][]} */ ([
      [
        'udp',
        'Handler.handle, UDP, warm cache',
        false,
        false,
        'steady state: answer-cache hits, no EDNS (like dnsperf)',
      ],
      ['edns', 'Handler.handle, UDP+EDNS, warm cache', true, false, 'OPT in query and response'],
      ['tcp', 'Handler.handle, TCP, warm cache', false, true, 'tcp=true, de-framed message'],
    ]).map(([key, name, edns, tcp, note]) => [
      key,
      {
        name,
        run(dir) {
          const f = fixtures(dir);
          const m = f.msgs(edns);
          const h = new Handler(f.cfg, f.zs, new Counters());
          let sink = 0;
          const xs = time(m.length * 5, () => {
            for (let k = 0; k < 5; k++) for (const x of m) sink += h.handle(x, tcp)?.length ?? 0;
          });
          return { xs, sink, note };
        },
      },
    ]),
  ),
  ...Object.fromEntries(
    /** @type {[string, string, boolean, boolean, string][]} */ ([
      [
        'addr',
        'Handler.handle, UDP, warm cache, client address',
        false,
        false,
        'RRL off (the baseline of rrl)',
      ],
      [
        'rrl',
        'Handler.handle, UDP, warm cache, RRL on',
        true,
        false,
        'rates no client reaches: accounted, never limited',
      ],
      [
        'cookie',
        'Handler.handle, UDP+EDNS, valid server cookie',
        false,
        true,
        'cookie checked (SipHash-2-4) and echoed',
      ],
    ]).map(([key, name, rrl, cookie, note]) => [
      key,
      {
        name,
        run(dir) {
          const f = fixtures(dir);
          const secret = Buffer.from('e5e973e5a6b2a43f48e7dc849e37bfcf', 'hex');
          const cookies = cookie ? new Cookies({ secret, stagingSecret: null, require: false }) : null;
          const limiter = rrl
            ? new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 1e6, errorsPerSecond: 1e6 })
            : null;
          const h = new Handler({ ...f.cfg, cookies, rrl: limiter }, f.zs, new Counters());
          let m = f.msgs(cookie);
          if (cookie) {
            // Learn a server cookie for 192.0.2.7, then send it with every query.
            const cc = Buffer.from('0102030405060708', 'hex');
            const withOpt = (q, data) =>
              Buffer.concat([
                q.subarray(0, q.length - 2),
                Buffer.from([0, 4 + data.length, 0, 10, 0, data.length]),
                data,
              ]);
            const r = h.handle(withOpt(m[0], cc), false, '192.0.2.7');
            const full = r.subarray(r.length - 24);
            m = m.map((q) => withOpt(q, full));
          }
          let sink = 0;
          const xs = time(m.length * 5, () => {
            for (let k = 0; k < 5; k++)
              for (const x of m) sink += h.handle(x, false, '192.0.2.7')?.length ?? 0;
          });
          return { xs, sink, note };
        },
      },
    ]),
  ),
  cold: {
    name: 'Handler.handle, UDP, cold cache',
    run(dir) {
      const f = fixtures(dir);
      const m = f.msgs(false);
      const h = new Handler(f.cfg, f.zs, new Counters());
      let sink = 0;
      const xs = time(m.length, () => {
        h.zones = f.zs; // drops the answer cache
        for (const x of m) sink += h.handle(x, false)?.length ?? 0;
      });
      return {
        xs,
        sink,
        note: 'cache cleared each pass: engine + encode + cache fill (~88% distinct questions)',
      };
    },
  },
  resolve: {
    name: 'resolve() (engine only)',
    run(dir) {
      const f = fixtures(dir);
      const names = f.lines.map((l) => nameFromText(l.split(' ')[0]));
      const types = f.lines.map((l) => TYPES[l.split(' ')[1]]);
      let sink = 0;
      const xs = time(names.length * 5, () => {
        for (let k = 0; k < 5; k++)
          for (let i = 0; i < names.length; i++) sink += resolve(f.zs, names[i], types[i]).rcode;
      });
      return { xs, sink, note: 'RRset selection, no encoding' };
    },
  },
  ...Object.fromEntries(
    /** @type {[string, string, 'zone'|'yaml', 'parse'|'load'|'build', string][]} */ ([
      ['zparse', 'RFC 1035 parse', 'zone', 'parse', 'parseMasterFile, text in memory'],
      ['yparse', 'YAML parse', 'yaml', 'parse', 'parseYamlZone, text in memory'],
      ['build', 'buildZone', 'zone', 'build', 'checks + trie, from parsed RFC 1035 records'],
      ['zload', 'RFC 1035 load', 'zone', 'load', 'read + parse + build (loadZoneFile, as the server does)'],
      ['yload', 'YAML load', 'yaml', 'load', 'read + parse + build (loadZoneFile, as the server does)'],
    ]).map(([key, name, fmtKind, what, note]) => [
      key,
      {
        name: `${name} (${fmt(RECORDS)} records)`,
        run(dir) {
          const file =
            fmtKind === 'zone'
              ? join(dir, 'big', 'big.test.zone')
              : join(dir, 'big', 'yaml', 'big.test.yaml');
          const text = readFileSync(file, 'utf8');
          const origin = nameFromText('big.test.');
          const n = RECORDS + 3; // + SOA, NS, glue
          const parse = () =>
            fmtKind === 'zone'
              ? parseMasterFile(text, { file, origin })
              : parseYamlZone(text, { file, origin });
          const parsed = what === 'build' ? parse() : null;
          const xs = time(
            n,
            () => {
              if (what === 'parse') {
                const p = parse();
                if (p.records.length !== n) throw new Error(`parsed ${p.records.length} records`);
              } else if (what === 'build') {
                if (!buildZone(parsed).zone) throw new Error('zone has errors');
              } else if (!loadZoneFile(file).zone) throw new Error('zone has errors');
            },
            fmtKind === 'yaml'
              ? { rate: true, warmMs: -1, runs: YAML_RUNS }
              : { rate: true, warmMs: 0, runs: PARSER_RUNS },
          );
          return { xs, sink: 1, note };
        },
      },
    ]),
  ),
};
const PARSER_RUNS = Math.max(3, Math.min(RUNS, 5));
/** YAML is slow (superlinear in the number of names): no warm-up pass and fewer runs. */
const YAML_RUNS = Number(process.env.MICRO_YAML_RUNS ?? 3);
const TIMEOUT = Number(process.env.MICRO_TIMEOUT ?? 900);
/** `yload` is left out by default (it is yparse + build, and takes minutes); ask for it by name. */
const DEFAULT_SET = [
  'parse',
  'udp',
  'edns',
  'tcp',
  'addr',
  'rrl',
  'cookie',
  'cold',
  'resolve',
  'zparse',
  'yparse',
  'build',
  'zload',
];
const PARSERS = new Set(['zparse', 'yparse', 'build', 'zload', 'yload']);

async function main() {
  const [flag, key, dir] = process.argv.slice(2);
  if (flag === '--one') {
    const b = BENCHES[key];
    const r = b.run(dir);
    process.stdout.write(`${JSON.stringify({ xs: r.xs, note: r.note, sink: r.sink > -1 })}\n`);
    return;
  }
  const only = flag ? flag.split(',') : DEFAULT_SET;
  for (const key of only)
    if (!BENCHES[key]) throw new Error(`no benchmark ${key}; have ${Object.keys(BENCHES).join(', ')}`);
  process.stderr.write(
    `micro: Node ${process.version}, ${RUNS} timed runs each (RFC 1035 parsers ${PARSER_RUNS}, YAML ${YAML_RUNS}), one process per benchmark\n`,
  );
  const work = mkdtempSync(join(tmpdir(), 'popdns-micro-'));
  process.on('exit', () => rmSync(work, { recursive: true, force: true }));
  realisticZone(join(work, 'zones'), NAMES);
  queryFile(join(work, 'queries.txt'), NAMES, 100_000);
  if (only.some((k) => PARSERS.has(k))) {
    process.stderr.write(`  generating a ${fmt(RECORDS)}-record zone…\n`);
    await bigZone(join(work, 'big'), RECORDS, true);
  }
  const rows = [];
  for (const key of only) {
    const b = BENCHES[key];
    const rate = PARSERS.has(key);
    let out;
    try {
      out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--one', key, work], {
        encoding: 'utf8',
        timeout: TIMEOUT * 1000,
        killSignal: 'SIGKILL',
        stdio: ['ignore', 'pipe', 'inherit'],
      });
    } catch (e) {
      const why = /** @type {{ signal?: string }} */ (e).signal ? `killed after ${TIMEOUT} s` : 'failed';
      rows.push({
        name: b.name,
        unit: rate ? 'records/s' : 'ns/op',
        med: NaN,
        min: NaN,
        max: NaN,
        note: why,
      });
      process.stderr.write(`  ${b.name}: ${why}\n`);
      continue;
    }
    const { xs, note } = JSON.parse(out);
    const row = {
      name: b.name,
      unit: rate ? 'records/s' : 'ns/op',
      med: median(xs),
      min: Math.min(...xs),
      max: Math.max(...xs),
      note,
    };
    rows.push(row);
    process.stderr.write(`  ${row.name}: ${fmt(row.med, rate ? 0 : 1)} ${row.unit}\n`);
  }
  const d = (r) => (r.unit === 'ns/op' ? 1 : 0);
  const out = [
    `popdns micro-benchmarks — ${new Date().toISOString().slice(0, 16)}Z, Node ${process.version}, median of ${RUNS} runs (RFC 1035 parsers: ${PARSER_RUNS}, YAML: ${YAML_RUNS}), one process per benchmark`,
    '',
    '| benchmark | median | unit | min – max | what |',
    '|---|---:|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${fmt(r.med, d(r))} | ${r.unit} | ${fmt(r.min, d(r))} – ${fmt(r.max, d(r))} | ${r.note} |`,
    ),
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`micro: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
