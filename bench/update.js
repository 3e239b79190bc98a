// @ts-check
/**
 * `npm run bench:update`: one RFC 2136 update on a big zone, in process (no sockets, no nsupdate):
 * the engine (`applyUpdate`: prerequisites, policy, the next zone version with the zone-file checks)
 * and the re-signing (`resignUpdate`: the changed RRsets, their NSEC/NSEC3 neighbours, the SOA).
 *
 * The zone: N names `hK A` under the apex (plus SOA, NS, glue), signed with a fresh ECDSAP256SHA256
 * key (NSEC3 by default). Each round adds a TXT at `_acme-challenge.hK` (an ACME DNS-01 challenge:
 * a new name and an empty non-terminal) and the next round deletes it again, alternating; the next
 * round starts from the version the last one made. Reported per step: median wall ms and median
 * CPU ms (process.cpuUsage, user+system) over the rounds, and the load average.
 *
 * Env: BENCH_UPDATE_NAMES (comma list, default 100000), BENCH_UPDATE_ROUNDS (default 20),
 * BENCH_UPDATE_DENIAL (nsec3 | nsec | none, default nsec3), BENCH_UPDATE_DIST (the build to
 * measure, default ./dist; point it at a build of an older commit for a before/after).
 */
import { loadavg } from 'node:os';
import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';

const NAMES = (process.env.BENCH_UPDATE_NAMES ?? '100000').split(',').map(Number);
const ROUNDS = Number(process.env.BENCH_UPDATE_ROUNDS ?? 20);
const DENIAL = process.env.BENCH_UPDATE_DENIAL ?? 'nsec3';
const DIST = resolvePath(process.env.BENCH_UPDATE_DIST ?? 'dist');

const imp = (p) => import(pathToFileURL(`${DIST}/${p}`).href);
const { buildZone } = await imp('zone/zone.js');
const { parseMasterFile } = await imp('zone/masterfile.js');
const { applyUpdate } = await imp('update/engine.js');
const { resignUpdate } = await imp('update/resign.js');
const { generateKey } = await imp('dnssec/keys.js');
const { makePolicy, SignatureCache, signZone } = await imp('dnssec/signzone.js');
const { CLASS, TYPE } = await imp('wire/constants.js');
const { nameFromText } = await imp('wire/name.js');
const { rdataFromText, tokenize } = await imp('wire/rdata.js');

const ORIGIN = nameFromText('big.test.');
const RULES = [{ key: 'k', names: null, types: null }];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
};
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** One update: add (or delete) the TXT at _acme-challenge.h<k>. */
function update(k, add) {
  const owner = nameFromText(`_acme-challenge.h${k}`, ORIGIN);
  const rdata = add ? rdataFromText(TYPE.TXT, tokenize('"challenge-token"'), ORIGIN) : new Uint8Array(0);
  return {
    id: 1,
    zone: { name: ORIGIN, type: TYPE.SOA, class: CLASS.IN },
    zoneCount: 1,
    prereqs: [],
    updates: [{ owner, type: TYPE.TXT, class: add ? CLASS.IN : CLASS.ANY, ttl: add ? 60 : 0, rdata }],
  };
}

for (const n of NAMES) {
  const lines = [
    '$TTL 300',
    '@ IN SOA ns1 hostmaster 1 3600 600 86400 300',
    '@ IN NS ns1',
    'ns1 IN A 192.0.2.1',
  ];
  for (let i = 0; i < n; i++) lines.push(`h${i} IN A 10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
  let t0 = performance.now();
  const built = buildZone(parseMasterFile(`${lines.join('\n')}\n`, { file: 'big.zone', origin: ORIGIN }), {
    consume: true,
  });
  lines.length = 0;
  let zone = built.zone;
  if (!zone) throw new Error(built.diagnostics.map((d) => d.message).join('; '));
  const buildS = (performance.now() - t0) / 1000;
  const keys = [generateKey(ORIGIN, 13, 'csk')];
  const policy = DENIAL === 'none' ? null : makePolicy({ denial: DENIAL });
  const cache = new SignatureCache();
  t0 = performance.now();
  if (policy) signZone(zone, keys, policy, { now: Math.floor(Date.now() / 1000), cache });
  const signS = (performance.now() - t0) / 1000;
  const eng = { wall: [], cpu: [] };
  const sig = { wall: [], cpu: [] };
  let incremental = 0;
  let signatures = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const k = (Math.floor(r / 2) * 7919) % n;
    const u = update(k, r % 2 === 0);
    let c0 = cpuMs();
    let w0 = performance.now();
    const res = applyUpdate(zone, u, { key: 'k', rules: RULES });
    eng.wall.push(performance.now() - w0);
    eng.cpu.push(cpuMs() - c0);
    if (!res.zone) throw new Error(`update ${r}: rcode ${res.rcode} ${res.reason ?? ''}`);
    let next = res.zone;
    if (policy) {
      const owners = [...res.removed, ...res.added].map((x) => x.owner);
      c0 = cpuMs();
      w0 = performance.now();
      const st = resignUpdate(zone, next, owners, { keys, policy, cache }, Math.floor(Date.now() / 1000));
      sig.wall.push(performance.now() - w0);
      sig.cpu.push(cpuMs() - c0);
      next = st.zone ?? next; // (older builds re-signed `next` in place)
      if (st.incremental) incremental++;
      signatures += st.signatures;
    }
    zone = next;
  }
  const f = (x) => x.toFixed(2);
  const [l1] = loadavg();
  console.log(
    JSON.stringify({
      dist: DIST,
      names: n,
      denial: DENIAL,
      rounds: ROUNDS,
      buildS: +buildS.toFixed(1),
      signS: +signS.toFixed(1),
      engineWallMs: f(median(eng.wall)),
      engineCpuMs: f(median(eng.cpu)),
      resignWallMs: policy ? f(median(sig.wall)) : null,
      resignCpuMs: policy ? f(median(sig.cpu)) : null,
      incremental: `${incremental}/${policy ? ROUNDS : 0}`,
      signaturesPerUpdate: policy ? +(signatures / ROUNDS).toFixed(1) : null,
      load1: +l1.toFixed(1),
      heapMiB: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
    }),
  );
}
