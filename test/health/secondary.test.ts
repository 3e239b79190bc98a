/**
 * The health probe and secondary zones (issue 12, "Operating it"): `max-serial-lag` is judged against
 * the primary's SOA serial (asked by the probe, with the zone's key), from the time the server or the
 * probe first saw the primary ahead; an unreachable primary judges nothing (the expire timer governs)
 * and an expired zone is unhealthy. Catalog members are learnt from the server's /zones report and
 * take their catalog's primaries. End to end: a popdns primary and a popdns secondary that the primary
 * refuses to transfer to while its serial moves on → `popdns health --once` unhealthy after the lag;
 * transfers allowed again → healthy.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  type CheckerDeps,
  type FollowedZone,
  HealthChecker,
  type PrimarySerial,
} from '../../src/health/checker.js';
import { HEALTH_DEFAULTS, type HealthConfig } from '../../src/health/config.js';
import type { ProbeResult } from '../../src/health/probe.js';
import type { SecondaryReportEntry, ZoneReport } from '../../src/server/zonestatus.js';
import { freePort, type Proc, startProcess, tmpDir } from '../helpers/peers.js';
import { KEY_NAME, newSecret, serialOf, smallZone, waitUntil } from '../helpers/secondary.js';

const SEC: FollowedZone = { zone: 'sec.example.', primaries: [{ host: '192.0.2.1', port: 53 }], key: 'xfr.' };
const CAT: FollowedZone = {
  zone: 'catalog.example.',
  primaries: [{ host: '192.0.2.2', port: 5300 }],
  key: null,
};

function scripted(cfg: Partial<HealthConfig> = {}, zones: string[] | null = null) {
  const state = {
    /** Serial the local server answers, per zone. */
    local: new Map([
      ['sec.example.', 5],
      ['member.example.', 9],
    ]),
    /** What the primaries say, per zone; null = unreachable. */
    primary: new Map<string, number | null>([
      ['sec.example.', 5],
      ['member.example.', 9],
    ]),
    secondaries: [] as SecondaryReportEntry[],
    asked: [] as FollowedZone[],
    now: 2_000_000_000_000,
  };
  const sec = (zone: string, extra: Partial<SecondaryReportEntry> = {}): SecondaryReportEntry => ({
    zone,
    role: 'secondary',
    catalog: null,
    state: 'loaded',
    serial: state.local.get(zone) ?? null,
    primary_serial: null,
    behind_since: null,
    last_refresh: state.now / 1000 - 5,
    expires_in: 1000,
    ...extra,
  });
  state.secondaries = [sec('sec.example.'), sec('member.example.', { role: 'member', catalog: CAT.zone })];
  const deps: CheckerDeps = {
    probe: async (_t, _tr, qname): Promise<ProbeResult> => {
      const s = state.local.get(qname.toLowerCase());
      return s === undefined
        ? { ok: false, detail: 'rcode SERVFAIL', serial: null, ms: 1 }
        : { ok: true, detail: 'ok', serial: s, ms: 1 };
    },
    readyz: null,
    bird: { apply: async () => [] },
    log: () => {},
    now: () => state.now,
    maintenance: () => false,
    zoneStatus: async () => {
      const report: ZoneReport = {
        now: state.now / 1000,
        zones: [...state.local.entries()].map(([zone, serial]) => ({
          zone,
          file: `data/${zone}zone`,
          state: 'served',
          serial,
          records: 3,
          loaded_at: 1,
          last_error: null,
          last_error_at: null,
          failing_since: null,
          disk_newer: false,
          disk_changed_at: null,
          signature_expiry: null,
        })),
        secondaries: state.secondaries,
      };
      return { ok: true, report };
    },
    zoneFiles: () => new Map(),
    primarySerial: async (z): Promise<PrimarySerial> => {
      state.asked.push(z);
      const s = state.primary.get(z.zone);
      return s === null || s === undefined
        ? { serial: null, detail: 'connect ECONNREFUSED' }
        : { serial: s, detail: `${z.primaries[0]!.host}:${z.primaries[0]!.port}` };
    },
  };
  const full: HealthConfig = {
    ...HEALTH_DEFAULTS,
    maintenanceFile: null,
    transports: ['udp'],
    maxSerialLagMs: 60_000,
    ...cfg,
  };
  const c = new HealthChecker(full, [{ host: '127.0.0.1', port: 53, family: 4 }], zones, deps, {
    secondaries: [SEC],
    catalogs: [CAT],
  });
  return { c, state, sec };
}

t.test('in step with the primaries: healthy; members asked with their catalog primaries', async (t) => {
  const { c, state } = scripted();
  const r = await c.check();
  t.same(r.reasons, []);
  t.same(
    state.asked.map((z) => [z.zone, z.primaries, z.key]).sort(),
    [
      ['member.example.', CAT.primaries, null],
      ['sec.example.', SEC.primaries, 'xfr.'],
    ],
    'the config secondary with its key; the catalog member with the catalog primaries',
  );
});

t.test('health.zones set: only the zones listed are compared (any letter case)', async (t) => {
  const { c, state } = scripted({}, ['Member.Example.']);
  state.primary.set('sec.example.', 99);
  state.primary.set('member.example.', 99);
  state.secondaries[1] = { ...state.secondaries[1]!, behind_since: state.now / 1000 - 3600 };
  t.match((await c.check()).reasons, [/^member\.example\. serves serial 9 but/]);
  t.same(
    state.asked.map((z) => z.zone),
    ['member.example.'],
  );
});

t.test('behind the primary: unhealthy only after the lag, from when the probe saw it', async (t) => {
  const { c, state } = scripted({ maxSerialLagMs: 60_000 });
  state.primary.set('sec.example.', 6);
  t.same((await c.check()).reasons, [], 'just seen behind: within the lag');
  state.now += 30_000;
  t.same((await c.check()).reasons, [], '30 s behind: within the lag');
  state.now += 31_000;
  t.same((await c.check()).reasons, [
    'sec.example. serves serial 5 but its primary 192.0.2.1:53 has 6 since 61s [POPDNS_E_SERIAL_LAG]',
  ]);
  // It catches up: healthy at once, and the clock starts afresh the next time.
  state.local.set('sec.example.', 6);
  state.now += 31_000;
  t.same((await c.check()).reasons, []);
  state.primary.set('sec.example.', 7);
  state.now += 31_000;
  t.same((await c.check()).reasons, [], 'behind again: a new lag period');
});

t.test('--once: the server says since when it knows the primary is ahead', async (t) => {
  const { c, state, sec } = scripted({ maxSerialLagMs: 60_000 });
  state.primary.set('member.example.', 10);
  state.secondaries = [
    sec('sec.example.'),
    sec('member.example.', {
      role: 'member',
      catalog: CAT.zone,
      primary_serial: 10,
      behind_since: state.now / 1000 - 120,
    }),
  ];
  t.same((await c.check()).reasons, [
    'member.example. serves serial 9 but its primary 192.0.2.2:5300 has 10 since 120s [POPDNS_E_SERIAL_LAG]',
  ]);
  // RFC 1982: a serial that wrapped around is ahead, not behind.
  const w = scripted({ maxSerialLagMs: 1000 });
  w.state.local.set('sec.example.', 4294967290);
  w.state.primary.set('sec.example.', 3);
  w.state.secondaries = [w.sec('sec.example.', { behind_since: w.state.now / 1000 - 100 })];
  t.match((await w.c.check()).reasons, [/sec\.example\. serves serial 4294967290 but .* has 3 /]);
  w.state.local.set('sec.example.', 3);
  w.state.primary.set('sec.example.', 4294967290);
  w.state.now += 20_000;
  t.same((await w.c.check()).reasons, [], 'the primary is the one behind: not our lag');
});

t.test('an unreachable primary judges nothing; an expired zone is unhealthy', async (t) => {
  const { c, state, sec } = scripted({ maxSerialLagMs: 1000 });
  state.primary.set('sec.example.', null);
  state.secondaries = [sec('sec.example.', { primary_serial: 6, behind_since: state.now / 1000 - 3600 })];
  t.same((await c.check()).reasons, [], 'primary down: the expire timer governs, not the lag');
  state.local.delete('sec.example.');
  state.secondaries = [
    sec('sec.example.', { state: 'expired', serial: 5, last_refresh: state.now / 1000 - 700 }),
  ];
  const r = await c.check();
  t.same(r.reasons, [
    'sec.example. expired: no primary reached (last contact 700s ago); answering SERVFAIL [POPDNS_E_ZONE_EXPIRED]',
  ]);
  // Expired is unhealthy with or without max-serial-lag.
  const n = scripted({ maxSerialLagMs: null });
  n.state.secondaries = [n.sec('sec.example.', { state: 'expired', last_refresh: null })];
  t.match((await n.c.check()).reasons, [/sec\.example\. expired: no primary reached \(last contact never\)/]);
  t.same(n.state.asked, [], 'without max-serial-lag the primaries are not asked');
});

t.test('the primaries are asked at most every half lag (at most every 10 s)', async (t) => {
  const { c, state } = scripted({ maxSerialLagMs: 60_000, intervalMs: 1000 });
  await c.check();
  const first = state.asked.length;
  state.now += 5_000;
  await c.check();
  t.equal(state.asked.length, first, 'cached 5 s later');
  state.now += 6_000;
  await c.check();
  t.equal(state.asked.length, first * 2, 'asked again after 10 s');
});

/** Writes the config of a popdns server (zones dir, data-dir, metrics, health) and returns its path. */
function writeConfig(dir: string, port: number, metrics: number, extra: string[]): string {
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    [
      `zones: ${join(dir, 'zones')}`,
      `listen: ["127.0.0.1:${port}"]`,
      `metrics: 127.0.0.1:${metrics}`,
      `data-dir: ${join(dir, 'data')}`,
      'workers: 1',
      'drain: 0s',
      ...extra,
      '',
    ].join('\n'),
  );
  return config;
}

const healthOnce = (config: string): Promise<{ status: number; stdout: string }> =>
  new Promise((resolve) => {
    execFile(
      process.execPath,
      ['dist/cli.js', 'health', '--config', config, '--once'],
      { encoding: 'utf8', timeout: 20_000 },
      (err, stdout) => resolve({ status: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout }),
    );
  });

t.test('end to end: a secondary the primary refuses is unhealthy after the lag', async (t) => {
  const t0 = Date.now();
  const at = (what: string): void => t.comment(`${what} at ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const secret = newSecret();
  const keys = ['tsig-keys:', `  ${KEY_NAME}: { algorithm: hmac-sha256, secret: "${secret}" }`];
  // The zone's SOA retry is 2 s (the secondary's minimum): it tries again soon after a refusal.
  const zoneText = (serial: number): string =>
    smallZone('lag.test', serial).replace(/SOA (\S+) (\S+) (\d+) \d+ \d+ /, 'SOA $1 $2 $3 60 2 ');
  const pdir = tmpDir(t, 'popdns-lagp-');
  mkdirSync(join(pdir, 'zones'));
  writeFileSync(join(pdir, 'zones', 'lag.test.zone'), zoneText(1));
  const pport = await freePort();
  const pmetrics = await freePort();
  const sport = await freePort();
  const smetrics = await freePort();
  const primaryConfig = (allowFrom: string): string =>
    writeConfig(pdir, pport, pmetrics, [
      ...keys,
      'transfer:',
      `  allow: [{ from: ${allowFrom}, key: ${KEY_NAME} }]`,
      `  notify: [{ to: "127.0.0.1:${sport}", key: ${KEY_NAME} }]`,
    ]);
  const startPrimary = (config: string): Promise<Proc> =>
    startProcess(t, process.execPath, ['dist/cli.js', 'serve', '--config', config], (o) =>
      o.includes('ready:'),
    );
  let primary = await startPrimary(primaryConfig('127.0.0.0/8'));

  const sdir = tmpDir(t, 'popdns-lags-');
  mkdirSync(join(sdir, 'zones'));
  const sconfig = writeConfig(sdir, sport, smetrics, [
    ...keys,
    'secondaries:',
    `  - { zone: lag.test, primaries: ["127.0.0.1:${pport}"], key: ${KEY_NAME} }`,
    'health:',
    '  transports: [udp]',
    '  interval: 3s',
    '  timeout: 2s',
    '  max-serial-lag: 2s',
    '  maintenance-file: false',
  ]);
  const sec = await startProcess(t, process.execPath, ['dist/cli.js', 'serve', '--config', sconfig], (o) =>
    o.includes('ready:'),
  );
  t.ok(
    await waitUntil(async () => (await serialOf(sport, 'lag.test')) === 1, 15_000),
    'serial 1 transferred',
  );
  at('serial 1');
  let h = await healthOnce(sconfig);
  t.equal(h.status, 0, `healthy in step: ${h.stdout}`);
  at('healthy');

  // The primary stops allowing the secondary (192.0.2.0/24 only) and its serial moves on.
  await stopPrimary(primary);
  writeFileSync(join(pdir, 'zones', 'lag.test.zone'), zoneText(2));
  primary = await startPrimary(primaryConfig('192.0.2.0/24'));
  t.ok(
    await waitUntil(() => /xfr in zone lag\.test\. .* failed .*REFUSED/.test(sec.output()), 15_000),
    'the secondary is refused',
  );
  at('refused');
  t.equal(await serialOf(sport, 'lag.test'), 1, 'still serving serial 1');
  // Past the 2 s lag (the server saw the primary ahead at its first refused attempt).
  await new Promise((r) => setTimeout(r, 2500));
  h = await healthOnce(sconfig);
  t.equal(h.status, 1, 'unhealthy');
  at('unhealthy');
  t.match(
    h.stdout,
    new RegExp(
      `unhealthy: lag\\.test\\. serves serial 1 but its primary 127\\.0\\.0\\.1:${pport} has 2 since \\d+s \\[POPDNS_E_SERIAL_LAG\\]`,
    ),
  );

  // Allowed again: the next retry transfers serial 2, and the probe is healthy.
  await stopPrimary(primary);
  await startPrimary(primaryConfig('127.0.0.0/8'));
  t.ok(
    await waitUntil(async () => (await serialOf(sport, 'lag.test')) === 2, 20_000),
    'serial 2 transferred',
  );
  at('serial 2');
  h = await healthOnce(sconfig);
  t.equal(h.status, 0, `healthy again: ${h.stdout}`);
});

async function stopPrimary(p: Proc): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const kill = setTimeout(() => p.child.kill('SIGKILL'), 3000);
    p.child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    p.child.kill('SIGTERM');
  });
}
