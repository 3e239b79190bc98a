// The lab's failover scenarios, run by `deploy/lab/lab.sh test` after `lab.sh up`. Prints what it
// measured and a final `lab-result {json}` line; exits 1 when a check fails. Every wait is bounded.
import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const LAB = join(here, 'lab.sh');
const NS = `${process.env.LAB_NS_PREFIX ?? 'popdnslab'}-client`;
const LAB_DIR = process.env.LAB_DIR ?? '/tmp/popdns-lab';
const ZONES_SRC = join(here, '..', '..', 'zones');
const V4 = '198.51.100.53';
const V6 = '2001:db8:53::53';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const failures = [];
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
};
const lab = (...args) => {
  const r = spawnSync(LAB, args, { encoding: 'utf8', timeout: 60000 });
  if (r.status !== 0) throw new Error(`lab.sh ${args.join(' ')}: ${r.status ?? r.signal} ${r.stderr}`);
  return r.stdout;
};

class Stream {
  constructor(count, { interval = 50, txt } = {}) {
    this.results = [];
    const extra = txt ? ['--txt', txt] : [];
    this.child = spawn('ip', ['netns', 'exec', NS, process.execPath, join(here, 'stream.mjs'), '--interval', String(interval), '--timeout', '500', '--count', String(count), ...extra, V4, V6], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    createInterface({ input: this.child.stdout }).on('line', (l) => {
      try {
        this.results.push(JSON.parse(l));
      } catch {
        // ignore
      }
    });
    this.exited = new Promise((r) => this.child.once('exit', r));
  }
  since(t, fam) {
    return this.results.filter((r) => r.t >= t && (fam === undefined || r.fam === fam));
  }
  async stop() {
    this.child.stdin.end();
    await Promise.race([this.exited, sleep(3000)]);
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
  }
}

/** Waits (bounded) until fn() is true; returns whether it became true. */
async function until(fn, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (fn()) return true;
    await sleep(100);
  }
  return fn();
}

const tail = (list, n) => list.slice(-n);
const count = (list, f) => list.filter(f).length;
const secs = (ms) => Math.round(ms / 100) / 10;
const result = {};

// 1. ECMP: dig from many source ports reaches both PoPs, over IPv4 and IPv6.
for (const [fam, addr, src] of [[4, V4, '10.53.0.2'], [6, V6, 'fd53::2']]) {
  const seen = {};
  for (let port = 20001; port <= 20040; port++) {
    const out = spawnSync('ip', ['netns', 'exec', NS, 'dig', `@${addr}`, '-b', `${src}#${port}`, 'CHAOS', 'TXT', 'id.server', '+short', '+time=1', '+tries=1'], {
      encoding: 'utf8',
      timeout: 5000,
    }).stdout.trim().replace(/"/g, '') || 'no answer';
    seen[out] = (seen[out] ?? 0) + 1;
  }
  result[`ecmp_v${fam}`] = seen;
  console.log(`ecmp v${fam}: dig from source ports 20001-20040: ${JSON.stringify(seen)}`);
  check((seen['popa.lab'] ?? 0) > 0 && (seen['popb.lab'] ?? 0) > 0, `v${fam}: both PoPs answer`);
}

// 2. Zone transfers: a change at the hidden primary (zone file rewritten, SIGHUP) reaches both PoPs by
// NOTIFY + IXFR; a stream of `v.fleet.lab. TXT` queries (NSID = the PoP) to the anycast addresses
// measures, per PoP, when it answers the new text for good, and that no query fails meanwhile.
{
  const PROP = 'v.fleet.lab';
  const ps = new Stream(1500, { interval: 20, txt: PROP });
  const pops = ['popa.lab', 'popb.lab'];
  const answering = (text) =>
    pops.every((id) => {
      const last = tail(ps.results.filter((r) => r.id === id), 5);
      return last.length === 5 && last.every((r) => r.ok && r.txt === text);
    });
  const ready = await until(() => answering('v1'), 30000);
  check(ready, 'both PoPs answer fleet.lab. (transferred from the hidden primary) before the change');
  lab('fleet-set', '2', 'v2');
  // The change is the primary's reload (SIGHUP, what `lab.sh dns-reload primary` sends), sent from here
  // so the clock starts at the signal, not at a shell's start on a loaded machine.
  const changeAt = Date.now();
  process.kill(Number(readFileSync(join(LAB_DIR, 'pids', 'primary-popdns.pid'), 'utf8')), 'SIGHUP');
  const done = await until(() => pops.every((id) => ps.since(changeAt).some((r) => r.id === id && r.txt === 'v2')), 10000);
  await sleep(1000); // and they stay there
  const after = ps.since(changeAt);
  const prop = { failed: count(after, (r) => !r.ok), sent: after.length };
  for (const id of pops) {
    const mine = after.filter((r) => r.id === id);
    const lastOld = mine.findLastIndex((r) => r.txt !== 'v2');
    const first = mine[lastOld + 1];
    prop[`ms_${id.slice(0, 4)}`] = done && first ? first.t - changeAt : null;
  }
  result.propagation = prop;
  console.log(`propagation: a change at the hidden primary answered via the anycast address by popa after ${prop.ms_popa ?? '-'} ms, by popb after ${prop.ms_popb ?? '-'} ms; ${prop.failed} of ${prop.sent} queries failed meanwhile`);
  check(done && prop.ms_popa !== null && prop.ms_popb !== null, 'both PoPs answer the change');
  check(prop.failed === 0, 'zero failed queries during the change');
  for (const pop of ['popa', 'popb']) {
    const log = readFileSync(join(LAB_DIR, 'log', `${pop}-popdns.log`), 'utf8');
    check(/xfr in zone fleet\.lab\. from 10\.53\.3\.2:53 IXFR serial 1 -> 2/.test(log), `${pop} took the change by IXFR`);
  }
  await ps.stop();
}

// 3. Kill popdns on popa: the probe withdraws, the router converges on popb.
let s = new Stream(2400);
await sleep(2000);
check(count(s.results, (r) => !r.ok) === 0, 'no failures before the kill');
const killAt = Date.now();
lab('dns-stop', 'popa', 'KILL');
const settled = (fam, who) => {
  const l = s.since(killAt, fam);
  return l.length >= 40 && tail(l, 40).every((r) => r.ok && r.id === who);
};
const converged = await until(() => settled(4, 'popb.lab') && settled(6, 'popb.lab'), 25000);
check(converged, 'after the kill, every query answers from popb');
for (const fam of [4, 6]) {
  const after = s.since(killAt, fam);
  const failed = after.filter((r) => !r.ok);
  const last = failed.length ? failed[failed.length - 1].t - killAt : 0;
  result[`failover_v${fam}`] = { seconds: secs(last), failed: failed.length, sent: after.length };
  console.log(`failover v${fam}: converged ${secs(last)} s after the kill; ${failed.length} of ${after.length} queries failed meanwhile`);
  check(last < 15000, `v${fam}: converged within 15 s`);
}

// 4. Bring it back: announced again, answers again.
const startAt = Date.now();
lab('dns-start', 'popa');
const back = await until(() => [4, 6].every((fam) => s.since(startAt, fam).some((r) => r.ok && r.id === 'popa.lab')), 45000);
check(back, 'popa answers again after popdns restarts');
for (const fam of [4, 6]) {
  const after = s.since(startAt, fam);
  const first = after.find((r) => r.ok && r.id === 'popa.lab');
  const failed = count(after, (r) => !r.ok);
  result[`recovery_v${fam}`] = { seconds: first ? secs(first.t - startAt) : null, failed };
  console.log(`recovery v${fam}: popa answers again ${first ? secs(first.t - startAt) : '-'} s after its start; ${failed} queries failed`);
}
await s.stop();

// 5. SIGTERM (drain) on popa during a steady stream: zero failed queries.
s = new Stream(1600);
await sleep(2000);
check(
  await until(() => [4, 6].every((fam) => s.since(0, fam).some((r) => r.id === 'popa.lab')), 10000),
  'popa in service before the drain',
);
const termAt = Date.now();
const stopping = spawn(LAB, ['dns-stop', 'popa', 'TERM'], { stdio: 'ignore' });
const stopped = new Promise((r) => stopping.once('exit', r));
await sleep(9000);
await Promise.race([stopped, sleep(5000)]);
for (const fam of [4, 6]) {
  const after = s.since(termAt, fam);
  const failed = count(after, (r) => !r.ok);
  const lastA = after.filter((r) => r.id === 'popa.lab').pop();
  result[`drain_v${fam}`] = { failed, sent: after.length, last_popa_answer_s: lastA ? secs(lastA.t - termAt) : null };
  console.log(`drain v${fam}: ${failed} of ${after.length} queries failed; last answer from popa ${lastA ? secs(lastA.t - termAt) : '-'} s after SIGTERM`);
  check(failed === 0, `v${fam}: zero failed queries during the drain`);
  check(after.length > 100, `v${fam}: the stream kept running`);
}
const restartAt = Date.now();
lab('dns-start', 'popa');
check(await until(() => [4, 6].every((fam) => s.since(restartAt, fam).some((r) => r.ok && r.id === 'popa.lab')), 45000), 'popa back after the drain');
await s.stop();

// 6. A zone removed on purpose on every PoP (file deleted, SIGHUP): the probes follow the server's
// zone list, so no PoP withdraws, and no query fails; the zone answers REFUSED everywhere.
const healthLog = (pop) => readFileSync(join(LAB_DIR, 'log', `${pop}-health.log`), 'utf8');
const withdrawals = (pop) => (healthLog(pop).match(/UP -> DOWN/g) ?? []).length;
const digRcode = (name, type) =>
  /status: ([A-Z]+)/.exec(
    spawnSync('ip', ['netns', 'exec', NS, 'dig', `@${V4}`, name, type, '+norec', '+time=1', '+tries=1'], {
      encoding: 'utf8',
      timeout: 5000,
    }).stdout,
  )?.[1] ?? 'no answer';
s = new Stream(1200);
await sleep(2000);
const downsBefore = { popa: withdrawals('popa'), popb: withdrawals('popb') };
check(digRcode('example.net', 'SOA') === 'NOERROR', 'example.net. served before the removal');
const rmAt = Date.now();
for (const pop of ['popa', 'popb']) {
  rmSync(join(LAB_DIR, pop, 'zones', 'example.net.zone'));
  lab('dns-reload', pop);
}
check(await until(() => digRcode('example.net', 'SOA') === 'REFUSED', 10000), 'example.net. REFUSED after the removal');
await sleep(7000); // more than fall (3) rounds of 1 s, twice over
{
  const after = s.since(rmAt);
  const failed = count(after, (r) => !r.ok);
  const recent = s.since(Date.now() - 3000);
  const both = ['popa.lab', 'popb.lab'].every((id) => recent.some((r) => r.ok && r.id === id));
  const downs = withdrawals('popa') - downsBefore.popa + withdrawals('popb') - downsBefore.popb;
  result.zone_removal = { withdrawals: downs, failed, sent: after.length, both_answer: both };
  console.log(`zone removal: ${downs} withdrawals, ${failed} of ${after.length} queries failed; both PoPs answering: ${both}`);
  check(downs === 0, 'no PoP withdraws when a zone is removed on purpose');
  check(failed === 0, 'no query fails when a zone is removed on purpose');
  check(both, 'both PoPs still answer');
  check(digRcode('example.com', 'SOA') === 'NOERROR', 'the other zone still answers');
}
for (const pop of ['popa', 'popb']) {
  copyFileSync(join(ZONES_SRC, 'example.net.zone'), join(LAB_DIR, pop, 'zones', 'example.net.zone'));
  lab('dns-reload', pop);
}
check(await until(() => digRcode('example.net', 'SOA') === 'NOERROR', 10000), 'example.net. back after it is restored');
await s.stop();

// 7. A zone file on popa changes and its new version fails to load: popa keeps the old version, and
// after max-serial-lag (2 s) plus fall (3) rounds its probe withdraws it; fixed, it comes back.
s = new Stream(800);
await sleep(1000);
const staleAt = Date.now();
const popaDowns = withdrawals('popa');
appendFileSync(join(LAB_DIR, 'popa', 'zones', 'example.com.yaml'), '\nnot-a-setting: 1\n');
lab('dns-reload', 'popa');
const withdrew = await until(() => withdrawals('popa') > popaDowns, 20000);
const staleS = secs(Date.now() - staleAt);
check(withdrew, 'popa withdraws when a newer zone file fails to load for longer than max-serial-lag');
check(/UP -> DOWN[^\n]*POPDNS_E_STALE_ZONE/.test(healthLog('popa')), 'the withdrawal names the stale zone');
const moved = await until(() => {
  const l = s.since(Date.now() - 2000);
  return l.length > 20 && l.every((r) => r.ok && r.id === 'popb.lab');
}, 15000);
check(moved, 'every query answers from popb while popa is stale');
copyFileSync(join(ZONES_SRC, 'example.com.yaml'), join(LAB_DIR, 'popa', 'zones', 'example.com.yaml'));
lab('dns-reload', 'popa');
const fixedAt = Date.now();
const returned = await until(() => s.since(fixedAt).some((r) => r.ok && r.id === 'popa.lab'), 45000);
check(returned, 'popa answers again once the zone loads');
result.stale_zone = { withdrawn_after_s: withdrew ? staleS : null, failed: count(s.since(staleAt), (r) => !r.ok) };
console.log(`stale zone: popa withdrawn ${withdrew ? staleS : '-'} s after the failed reload; back: ${returned}`);
await s.stop();

console.log(`lab-result ${JSON.stringify({ ...result, failures })}`);
process.exit(failures.length ? 1 : 0);
