/**
 * The anycast lab (deploy/lab/lab.sh): two PoPs running bird + popdns + popdns health behind a router
 * with ECMP, in network namespaces the lab creates: failover, drain, a zone removed on every PoP (no
 * withdrawal), and a zone whose new version fails to load on one PoP (that PoP withdraws). Opt-in: it
 * runs only with POPDNS_LAB=1 (which .ci/run sets), so a developer's `npm test` never creates network
 * namespaces unasked. Then it needs root, iproute2, bird2 and dig (required in CI,
 * POPDNS_REQUIRE_PEERS=1).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { needTool, plainEnv, REQUIRE_PEERS, tmpDir } from '../helpers/peers.js';

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
  const env = {
    ...plainEnv(),
    LAB_DIR: join(tmpDir(t, 'popdns-lab-'), 'lab'),
    LAB_NS_PREFIX: `pdl${process.pid}`,
  };
  const lab = (cmd: string, timeout: number) =>
    spawnSync('deploy/lab/lab.sh', [cmd], { env, encoding: 'utf8', timeout, killSignal: 'SIGKILL' });
  t.teardown(() => {
    lab('down', 60000);
  });
  const up = lab('up', 180000);
  t.equal(up.status, 0, `lab.sh up: ${up.stderr.trim().split('\n').slice(-5).join(' | ')}`);
  if (up.status !== 0) return;
  const run = lab('test', 420000);
  for (const line of run.stdout.trim().split('\n')) t.comment(line);
  t.equal(run.status, 0, `lab.sh test${run.stderr ? `: ${run.stderr}` : ''}`);
  const m = /^lab-result (.*)$/m.exec(run.stdout);
  t.ok(m, 'the lab printed its numbers');
  const r = JSON.parse(m?.[1] ?? '{}') as Record<
    string,
    { failed?: number; seconds?: number; withdrawals?: number; withdrawn_after_s?: number | null }
  >;
  t.equal(r.drain_v4?.failed, 0, 'drain over IPv4: zero failed queries');
  t.equal(r.drain_v6?.failed, 0, 'drain over IPv6: zero failed queries');
  t.ok((r.failover_v4?.seconds ?? 99) < 15, 'IPv4 failover converged');
  t.ok((r.failover_v6?.seconds ?? 99) < 15, 'IPv6 failover converged');
  t.equal(r.zone_removal?.withdrawals, 0, 'a zone removed on every PoP withdraws none of them');
  t.equal(r.zone_removal?.failed, 0, 'a zone removed on every PoP: zero failed queries');
  t.ok((r.stale_zone?.withdrawn_after_s ?? 99) < 20, 'a PoP stuck on a zone that fails to load withdraws');
  const down = lab('down', 60000);
  t.equal(down.status, 0, 'lab.sh down');
  const left = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
  t.notMatch(left, new RegExp(`pdl${process.pid}-`), 'no lab namespaces left');
});
