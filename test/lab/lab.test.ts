/**
 * The anycast lab (deploy/lab/lab.sh): two PoPs running bird + popdns + popdns health behind a router
 * with ECMP, in network namespaces the lab creates: failover, drain, a zone removed on every PoP (no
 * withdrawal), a zone whose new version fails to load on one PoP (that PoP withdraws), and a change at
 * the hidden primary reaching both PoPs (secondaries, NOTIFY + IXFR with TSIG) with the time it took. Opt-in: it
 * runs only with POPDNS_LAB=1 (which .ci/run sets), so a developer's `npm test` never creates network
 * namespaces unasked. Then it needs root, iproute2, bird2 and dig (required in CI,
 * POPDNS_REQUIRE_PEERS=1).
 */
import { join } from 'node:path';
import t from 'tap';
import { needTool, plainEnv, REQUIRE_PEERS, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

// The lab's own budgets (spawnSync below: up 180 s, test 420 s, down twice 60 s) are longer than tap's
// per-file default (180 s): the whole file gets 15 minutes, so a slow lab is bounded by those budgets,
// not cut off by tap halfway through with its namespaces left behind. A quiet machine needs ~3 minutes.
const UP_MS = 180_000;
const TEST_MS = 420_000;
const DOWN_MS = 60_000;
t.setTimeout(UP_MS + TEST_MS + 2 * DOWN_MS + 180_000);

t.test('anycast failover with real BGP', async (t) => {
  if (process.env.POPDNS_LAB !== '1') {
    t.skip('the anycast lab creates network namespaces: opt in with POPDNS_LAB=1 (CI does)', () => {});
    return;
  }
  if (process.getuid?.() !== 0) {
    if (REQUIRE_PEERS) t.fail('the anycast lab needs root (network namespaces) and POPDNS_REQUIRE_PEERS=1');
    else t.skip('the anycast lab needs root (network namespaces): run as root or in CI', () => {});
    return;
  }
  if (
    !needTool(t, 'ip', 'iproute2') ||
    !needTool(t, 'bird', 'bird2') ||
    !needTool(t, 'dig', 'bind9-dnsutils')
  )
    return;
  // The lab's node processes (popdns, the probe, the query stream) run as in production: without
  // tap's loader and process-info hooks, which slow every start and every exit.
  const prefix = process.env.LAB_NS_PREFIX ?? `pdl${process.pid}`;
  const env = {
    ...plainEnv(),
    LAB_DIR: join(tmpDir(t, 'popdns-lab-'), 'lab'),
    LAB_NS_PREFIX: prefix,
  };
  const lab = (cmd: string, timeout: number) =>
    spawnSync('deploy/lab/lab.sh', [cmd], { env, encoding: 'utf8', timeout, killSignal: 'SIGKILL' });
  t.teardown(() => {
    lab('down', DOWN_MS);
  });
  const up = lab('up', UP_MS);
  t.equal(up.status, 0, `lab.sh up: ${up.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  if (up.status !== 0) return;
  const run = lab('test', TEST_MS);
  for (const line of run.stdout.trim().split('\n')) t.comment(line);
  t.equal(run.status, 0, `lab.sh test${run.stderr ? `: ${run.stderr}` : ''}`);
  const m = /^lab-result (.*)$/m.exec(run.stdout);
  t.ok(m, 'the lab printed its numbers');
  const r = JSON.parse(m?.[1] ?? '{}') as Record<
    string,
    {
      failed?: number;
      seconds?: number;
      withdrawals?: number;
      withdrawn_after_s?: number | null;
      ms_popa?: number | null;
      ms_popb?: number | null;
    }
  >;
  t.equal(r.drain_v4?.failed, 0, 'drain over IPv4: zero failed queries');
  t.equal(r.drain_v6?.failed, 0, 'drain over IPv6: zero failed queries');
  t.ok((r.failover_v4?.seconds ?? 99) < 15, 'IPv4 failover converged');
  t.ok((r.failover_v6?.seconds ?? 99) < 15, 'IPv6 failover converged');
  t.equal(r.zone_removal?.withdrawals, 0, 'a zone removed on every PoP withdraws none of them');
  t.equal(r.zone_removal?.failed, 0, 'a zone removed on every PoP: zero failed queries');
  t.ok((r.stale_zone?.withdrawn_after_s ?? 99) < 20, 'a PoP stuck on a zone that fails to load withdraws');
  // Goal ≤ 1 s; the bound is loose so a loaded CI machine does not flake. The numbers are printed above.
  const prop = r.propagation;
  t.comment(
    `propagation from the hidden primary: popa ${prop?.ms_popa ?? '-'} ms, popb ${prop?.ms_popb ?? '-'} ms`,
  );
  t.ok((prop?.ms_popa ?? 1e9) < 5000, 'a change at the hidden primary is answered by popa via anycast');
  t.ok((prop?.ms_popb ?? 1e9) < 5000, 'a change at the hidden primary is answered by popb via anycast');
  t.equal(prop?.failed, 0, 'a change at the hidden primary: zero failed queries');
  const down = lab('down', DOWN_MS);
  t.equal(down.status, 0, 'lab.sh down');
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  t.notMatch(left, new RegExp(`${prefix}-`), 'no lab namespaces left');
});
