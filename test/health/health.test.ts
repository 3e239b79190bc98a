/**
 * The health probe: BIRD's control-socket protocol (against a scripted socket and a real bird), the
 * DNS verdict, rise/fall hysteresis and the immediate withdraw reasons, and `popdns health` end to end
 * against a real popdns and a real BIRD.
 */
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { stateFileText } from '../../src/health/anycast.js';
import { BirdClient, BirdError, setProtocol } from '../../src/health/bird.js';
import { type CheckerDeps, HealthChecker, type ReadyState, serialLess } from '../../src/health/checker.js';
import { HEALTH_DEFAULTS, type HealthConfig, parseDurationMs } from '../../src/health/config.js';
import { zoneFileMap } from '../../src/cli/health.js';
import { buildProbeQuery, judgeResponse, type ProbeResult } from '../../src/health/probe.js';
import { defaultConfig, parseConfig } from '../../src/server/config.js';
import type { ZoneReportEntry } from '../../src/server/zonestatus.js';
import { freePort, hasTool, needTool, startProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

t.test('durations and config', async (t) => {
  t.equal(parseDurationMs('500ms'), 500);
  t.equal(parseDurationMs('1.5s'), 1500);
  t.equal(parseDurationMs('2'), 2000);
  t.equal(parseDurationMs('1m'), 60000);
  t.equal(parseDurationMs('soon'), undefined);
  const base = defaultConfig('test', 2);
  const cfg = parseConfig(
    [
      'health:',
      '  interval: 500ms',
      '  timeout: 300ms',
      '  rise: 1',
      '  zones: [example.com]',
      '  prefixes:',
      '    - { prefix: 198.51.100.0/24, protocol: anycast4 }',
      '  metrics: false',
    ].join('\n'),
    'pop.yaml',
    base,
  );
  t.equal(cfg.health.intervalMs, 500);
  t.equal(cfg.health.rise, 1);
  t.equal(cfg.health.fall, 3, 'default fall');
  t.same(cfg.health.zones, ['example.com.']);
  t.same(cfg.health.prefixes, [{ prefix: '198.51.100.0/24', protocol: 'anycast4' }]);
  t.equal(cfg.health.metrics, null);
  t.equal(base.health.intervalMs, 1000, 'defaults not mutated');
  t.throws(
    () => parseConfig('health:\n  intervl: 1s\n', 'pop.yaml', base),
    /pop\.yaml:2:3: error: unknown health setting "intervl"/,
  );
  t.throws(
    () => parseConfig('health:\n  interval: 1s\n  timeout: 2s\n', 'p.yaml', base),
    /must not exceed.*POPDNS_E_CONFIG/,
  );
  t.throws(
    () =>
      parseConfig(
        'health:\n  prefixes:\n    - { prefix: 198.51.100.0/24, protocol: "any cast" }\n',
        'p.yaml',
        base,
      ),
    /not a BIRD protocol name/,
  );
});

t.test('state file for BIRD', async (t) => {
  const p = [
    { prefix: '198.51.100.0/24', protocol: 'anycast4' },
    { prefix: '2001:db8:53::/48', protocol: 'anycast6' },
  ];
  t.match(stateFileText(p, false), /define ANYCAST4_DISABLED = 1;[^\n]*\ndefine ANYCAST6_DISABLED = 1;/);
  t.match(stateFileText(p, true), /define ANYCAST4_DISABLED = 0;[^\n]*\ndefine ANYCAST6_DISABLED = 0;/);
});

t.test('RFC 1982 serial comparison', async (t) => {
  t.ok(serialLess(1, 2));
  t.notOk(serialLess(2, 1));
  t.notOk(serialLess(5, 5));
  t.ok(serialLess(0xffffffff, 0), 'wraps');
  t.notOk(serialLess(0, 0xffffffff));
});

/** A scripted BIRD: answers with the given raw lines per command; optionally never says hello. */
async function fakeBird(
  t: Test,
  dir: string,
  replies: Record<string, string>,
  opts: { silent?: boolean } = {},
): Promise<{ path: string; seen: string[] }> {
  const path = join(dir, `bird-${Math.random().toString(36).slice(2)}.ctl`);
  const seen: string[] = [];
  const sockets: Socket[] = [];
  const srv = createServer((s) => {
    sockets.push(s);
    if (opts.silent) return;
    s.write('0001 BIRD 2.0.12 ready.\n');
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        const cmd = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        seen.push(cmd);
        // Split the reply into two writes to exercise partial reads.
        const r = replies[cmd] ?? '9001 syntax error\n';
        s.write(r.slice(0, 3));
        s.write(r.slice(3));
        nl = buf.indexOf('\n');
      }
    });
  });
  await new Promise<void>((resolve) => srv.listen(path, resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    srv.close();
  });
  return { path, seen };
}

t.test('BIRD control socket protocol', async (t) => {
  const dir = tmpDir(t);
  const { path, seen } = await fakeBird(t, dir, {
    'disable anycast4': '0009-anycast4: disabled\n0000 \n',
    'enable anycast4': '0010-anycast4: already enabled\n0000 \n',
    'show protocols "anycast*"':
      '2002-Name       Proto      Table      State  Since         Info\n1002-anycast4   Static     master4    up     19:12:46.538  \n anycast6   Static     master6    up     19:12:42.881  \n0000 \n',
    'disable nosuch':
      '9001 syntax error, unexpected CF_SYM_UNDEFINED, expecting CF_SYM_KNOWN or TEXT or ALL\n',
    'disable locked': '8007 Access denied\n',
  });
  const bird = await BirdClient.open(path, 1000);
  t.equal(await setProtocol(bird, 'anycast4', false), 'anycast4: disabled');
  t.equal(await setProtocol(bird, 'anycast4', true), 'anycast4: already enabled');
  const show = await bird.command('show protocols "anycast*"');
  t.equal(show.code, 0);
  t.equal(show.lines.length, 4, 'heading, two rows (one a continuation line) and the end');
  t.match(show.lines[2], /^anycast6/);
  await t.rejects(setProtocol(bird, 'nosuch', false), /BIRD has no protocol "nosuch".*POPDNS_E_BIRD/);
  await t.rejects(setProtocol(bird, 'locked', false), /access denied/);
  bird.close();
  t.same(seen.slice(0, 2), ['disable anycast4', 'enable anycast4']);

  const hung = await fakeBird(t, dir, {}, { silent: true });
  const start = Date.now();
  await t.rejects(
    BirdClient.open(hung.path, 200),
    /no welcome from BIRD within 200 ms.*POPDNS_E_BIRD/,
    'a BIRD that accepts but never greets times out',
  );
  t.ok(Date.now() - start < 2000);
  await t.rejects(BirdClient.open(join(dir, 'missing.ctl'), 200), /POPDNS_E_BIRD/);
});

t.test('judging a response', async (t) => {
  const q = buildProbeQuery(0x1234, 'example.com.', 6);
  t.equal(q.length, 12 + 13 + 4);
  // A response built by hand (RFC 1035 §4.1): QR AA NOERROR, the question, one SOA answer whose
  // owner is a pointer to the question name (0xc00c) and whose serial is 2026112301.
  const soa = Buffer.concat([
    Buffer.from([0xc0, 0x0c, 0, 6, 0, 1, 0, 0, 0x0e, 0x10]),
    Buffer.from([0, 0]), // RDLENGTH, patched below
    Buffer.from([2, 0x6e, 0x73, 0xc0, 0x0c]), // ns.example.com.
    Buffer.from([0xc0, 0x0c]), // rname: example.com. (good enough for the test)
    Buffer.from([0x78, 0xc4, 0x05, 0x2d]), // serial 2026112301 = 0x78c4052d
    Buffer.alloc(16),
  ]);
  soa.writeUInt16BE(soa.length - 12, 10);
  const head = Buffer.from(q);
  head.writeUInt16BE(0x8400, 2);
  head.writeUInt16BE(1, 6);
  const msg = Buffer.concat([head, soa]);
  t.same(judgeResponse(msg, 0x1234, 6), { ok: true, detail: 'ok', serial: 2026112301 });
  t.match(judgeResponse(msg, 0x9999, 6), { ok: false, detail: /ID/ });
  const noAA = Buffer.from(msg);
  noAA.writeUInt16BE(0x8000, 2);
  t.match(judgeResponse(noAA, 0x1234, 6), { ok: false, detail: /AA not set/ });
  const servfail = Buffer.from(msg);
  servfail.writeUInt16BE(0x8402, 2);
  t.match(judgeResponse(servfail, 0x1234, 6), { ok: false, detail: /SERVFAIL/ });
  t.match(judgeResponse(msg.subarray(0, msg.length - 10), 0x1234, 6), { ok: false, detail: /malformed/ });
  t.match(judgeResponse(head.subarray(0, 8), 0x1234, 6), { ok: false, detail: /short/ });
});

/** A checker over scripted probes, readyz and BIRD. */
function scripted(cfg: Partial<HealthConfig> = {}) {
  const state = {
    probeOk: true,
    ready: { state: 'ready' } as ReadyState,
    maintenance: false,
    birdFails: false,
    applied: [] as boolean[],
    logs: [] as string[],
    now: 1_000_000,
  };
  const deps: CheckerDeps = {
    probe: async (): Promise<ProbeResult> =>
      state.probeOk
        ? { ok: true, detail: 'ok', serial: 7, ms: 1 }
        : { ok: false, detail: 'timeout after 800 ms', serial: null, ms: 800 },
    readyz: async () => state.ready,
    bird: {
      apply: async (announce) => {
        if (state.birdFails) throw new BirdError('connect ENOENT /run/bird/bird.ctl [POPDNS_E_BIRD]');
        state.applied.push(announce);
        return [announce ? 'anycast4: enabled' : 'anycast4: disabled'];
      },
    },
    log: (m) => state.logs.push(m),
    now: () => state.now,
    maintenance: () => state.maintenance,
    zoneStatus: null,
    zoneFiles: () => new Map(),
  };
  const full: HealthConfig = {
    ...HEALTH_DEFAULTS,
    ...cfg,
    prefixes: [{ prefix: '198.51.100.0/24', protocol: 'anycast4' }],
  };
  const c = new HealthChecker(full, [{ host: '127.0.0.1', port: 53, family: 4 }], ['example.com.'], deps);
  return { c, state };
}

t.test('hysteresis: starts withdrawn, rise 2, fall 3', async (t) => {
  const { c, state } = scripted();
  await c.reconcile();
  t.same(state.applied, [false], 'withdrawn before the first round');
  await c.round();
  t.equal(c.announced, false, 'one good round is not enough');
  await c.round();
  t.equal(c.announced, true, 'announced after rise=2 good rounds');
  t.match(state.logs.join('\n'), /DOWN -> UP, announcing: 2 good rounds/);
  state.probeOk = false;
  await c.round();
  await c.round();
  t.equal(c.announced, true, 'two failures are not enough');
  state.probeOk = true;
  await c.round();
  state.probeOk = false;
  await c.round();
  await c.round();
  t.equal(c.announced, true, 'the failure streak restarted after a good round');
  await c.round();
  t.equal(c.announced, false, 'withdrawn after fall=3 failed rounds');
  t.match(
    state.logs.at(-2) ?? '',
    /UP -> DOWN, withdrawing: 3 failed rounds, last: udp 127\.0\.0\.1:53 example\.com\. SOA: timeout/,
  );
  t.equal(c.transitions.up, 1);
  t.equal(c.transitions.down, 1);
  t.equal(state.applied.at(-1), false);
});

t.test('maintenance file and draining withdraw at once; an unreachable readyz is a failure', async (t) => {
  const { c, state } = scripted({ rise: 1 });
  await c.round();
  t.equal(c.announced, true);
  state.maintenance = true;
  await c.round();
  t.equal(c.announced, false, 'maintenance: withdrawn in one round');
  t.match(state.logs.join('\n'), /maintenance file/);
  await c.round();
  t.equal(c.announced, false, 'stays withdrawn while the file exists');
  state.maintenance = false;
  await c.round();
  t.equal(c.announced, true);
  state.ready = { state: 'draining' };
  await c.round();
  t.equal(c.announced, false, 'draining: withdrawn in one round');
  state.ready = { state: 'error', detail: 'ECONNREFUSED' };
  await c.round();
  t.equal(c.announced, false, 'cannot tell: not announced');
  const r = await c.check();
  t.equal(r.healthy, false);
  t.match(r.reasons, [/readyz: ECONNREFUSED/]);
});

t.test('BIRD unreachable: retried every round, logged once, never thrown', async (t) => {
  const { c, state } = scripted({ rise: 1 });
  state.birdFails = true;
  await c.round();
  await c.round();
  await c.round();
  t.equal(c.birdErrors, 3);
  t.equal(c.birdInSync, false);
  t.equal(state.logs.filter((l) => l.includes('ENOENT')).length, 1, 'one log line for a repeated error');
  state.birdFails = false;
  await c.round();
  t.equal(c.birdInSync, true);
  t.match(state.logs.join('\n'), /BIRD reachable again after 3 failed attempts/);
  t.same(state.applied, [true]);
});

t.test('popdns health against a real popdns and a real BIRD', async (t) => {
  if (!needTool(t, 'bird', 'bird2')) return;
  const dir = tmpDir(t);
  const ctl = join(dir, 'bird.ctl');
  const stateFile = join(dir, 'anycast.conf');
  writeFileSync(
    stateFile,
    stateFileText(
      [
        { prefix: '198.51.100.0/24', protocol: 'anycast4' },
        { prefix: '2001:db8:53::/48', protocol: 'anycast6' },
      ],
      false,
    ),
  );
  writeFileSync(
    join(dir, 'bird.conf'),
    [
      'router id 192.0.2.1;',
      `include "${stateFile}";`,
      'protocol device {}',
      'protocol static anycast4 { disabled ANYCAST4_DISABLED; ipv4; route 198.51.100.0/24 blackhole; }',
      'protocol static anycast6 { disabled ANYCAST6_DISABLED; ipv6; route 2001:db8:53::/48 blackhole; }',
      '',
    ].join('\n'),
  );
  await startProcess(
    t,
    'bird',
    ['-f', '-c', join(dir, 'bird.conf'), '-s', ctl, '-P', join(dir, 'bird.pid')],
    () => {
      try {
        return readFileSync(join(dir, 'bird.pid')).length > 0;
      } catch {
        return false;
      }
    },
  );
  const showState = (): string =>
    spawnSync('birdc', ['-s', ctl, 'show', 'protocols'], { encoding: 'utf8' }).stdout;
  if (hasTool('birdc'))
    t.match(showState(), /anycast4\s+Static\s+master4\s+down/, 'BIRD starts withdrawn from the state file');

  const port = await freePort();
  const metricsPort = await freePort();
  const healthMetrics = await freePort();
  const maintenance = join(dir, 'maintenance');
  const config = join(dir, 'pop.yaml');
  writeFileSync(
    config,
    [
      'zones: zones',
      `listen: [127.0.0.1:${port}]`,
      `metrics: 127.0.0.1:${metricsPort}`,
      'identity: test-pop',
      'drain: 3s',
      'health:',
      '  interval: 500ms',
      '  timeout: 400ms',
      `  maintenance-file: ${maintenance}`,
      `  bird-socket: ${ctl}`,
      `  state-file: ${stateFile}`,
      `  metrics: 127.0.0.1:${healthMetrics}`,
      '  max-serial-lag: 10s',
      '  prefixes:',
      '    - { prefix: 198.51.100.0/24, protocol: anycast4 }',
      '    - { prefix: "2001:db8:53::/48", protocol: anycast6 }',
      '',
    ].join('\n'),
  );
  const once = spawnSync(process.execPath, ['dist/cli.js', 'health', '--config', config, '--once'], {
    encoding: 'utf8',
  });
  t.equal(once.status, 1, '--once: unhealthy while nothing serves');
  t.match(once.stdout, /unhealthy: udp 127\.0\.0\.1:\d+ example\.com\. SOA: /);

  const server = await startProcess(
    t,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', config, '--workers', '1'],
    (o) => o.includes('ready:'),
  );
  const once2 = spawnSync(process.execPath, ['dist/cli.js', 'health', '--config', config, '--once'], {
    encoding: 'utf8',
  });
  t.equal(once2.status, 0, `--once: healthy (${once2.stdout.trim()})`);

  // Announced = the transition logged and then pushed to BIRD (state file written, protocols enabled).
  const health = await startProcess(t, process.execPath, ['dist/cli.js', 'health', '--config', config], (o) =>
    /DOWN -> UP[^]*BIRD: [^\n]*enabled/.test(o),
  );
  t.match(readFileSync(stateFile, 'utf8'), /ANYCAST4_DISABLED = 0;/, 'state file says announced');
  if (hasTool('birdc')) {
    t.match(showState(), /anycast4\s+Static\s+master4\s+up/);
    t.match(showState(), /anycast6\s+Static\s+master6\s+up/);
  }
  const scrape = await (await fetch(`http://127.0.0.1:${healthMetrics}/metrics`)).text();
  t.match(scrape, /popdns_health_prefix_announced\{prefix="198\.51\.100\.0\/24",protocol="anycast4"\} 1/);
  t.match(scrape, /popdns_health_transitions_total\{to="up"\} 1/);
  if (hasTool('promtool')) {
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    t.equal(lint.status, 0, `promtool check metrics: ${lint.stdout}${lint.stderr}`);
  }

  const waitFor = async (re: RegExp, what: string): Promise<void> => {
    const deadline = Date.now() + 10000;
    while (Date.now() < deadline && !re.test(health.output())) await new Promise((r) => setTimeout(r, 50));
    t.match(health.output(), re, what);
  };
  writeFileSync(maintenance, '');
  // "withdrawing" is logged when the probe decides; the state file and BIRD follow, then "BIRD: …".
  await waitFor(
    /UP -> DOWN, withdrawing: maintenance file[^]*BIRD: [^\n]*disabled/,
    'maintenance file withdraws',
  );
  if (hasTool('birdc')) t.match(showState(), /anycast4\s+Static\s+master4\s+down/);
  spawnSync('rm', ['-f', maintenance]);
  await waitFor(/DOWN -> UP[^\n]*\n[^]*DOWN -> UP/, 'announced again when the file goes');

  // SIGTERM to the server: /readyz 503 → withdraw at once while the server still answers.
  server.child.kill('SIGTERM');
  await waitFor(/UP -> DOWN, withdrawing: server is draining[^]*BIRD: [^\n]*disabled/, 'drain withdraws');
  t.match(readFileSync(stateFile, 'utf8'), /ANYCAST4_DISABLED = 1;/);

  // The probe's own SIGTERM withdraws (already down here) and exits 0.
  const exited = new Promise<number | null>((resolve) => health.child.once('exit', (code) => resolve(code)));
  health.child.kill('SIGTERM');
  t.equal(await exited, 0);
});

t.test('deploy/bird/bird.conf parses in BIRD', async (t) => {
  if (!needTool(t, 'bird', 'bird2')) return;
  const dir = tmpDir(t);
  const state = join(dir, 'anycast.conf');
  writeFileSync(
    state,
    stateFileText(
      [
        { prefix: '198.51.100.0/24', protocol: 'anycast4' },
        { prefix: '2001:db8:53::/48', protocol: 'anycast6' },
      ],
      false,
    ),
  );
  const conf = join(dir, 'bird.conf');
  writeFileSync(
    conf,
    readFileSync('deploy/bird/bird.conf', 'utf8').replace('/run/popdns/anycast.conf', state),
  );
  const r = spawnSync('bird', ['-p', '-c', conf], { encoding: 'utf8' });
  t.equal(r.status, 0, `bird -p: ${r.stderr}`);
});

t.test('the probe learns zone names from the head of each file, as the server names them', async (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'example.com.yaml'), 'soa: {}\nrecords: {}\n');
  writeFileSync(
    join(dir, 'db.zone'),
    '; the name is not the origin\n$TTL 300\n$ORIGIN Example.NET.\n@ SOA ns h 1 1 1 1 1\n',
  );
  writeFileSync(join(dir, 'named.yml'), '# comment\norigin: example.org\nrecords: {}\n');
  writeFileSync(join(dir, 'late.test.zone'), '@ SOA ns h 1 1 1 1 1\n$ORIGIN elsewhere.\n');
  const m = zoneFileMap(dir);
  t.same(
    [...m.keys()].sort(),
    ['db.', 'example.com.', 'example.org.', 'late.test.'],
    'the file name names the zone ($ORIGIN only sets the base for relative names); a YAML origin: key wins',
  );
  t.equal(m.get('db.'), join(dir, 'db.zone'));
});

/**
 * A fake server for the probe: the zones it serves answer SOA, others REFUSED; its `/zones` report
 * lists what it serves and what failed, as server/zonestatus.ts writes it.
 */
function following(cfg: Partial<HealthConfig> = {}, static_: string[] | null = null) {
  const entry = (zone: string, extra: Partial<ZoneReportEntry> = {}): ZoneReportEntry => ({
    zone,
    file: `/zones/${zone}zone`,
    state: 'served',
    serial: 1,
    records: 2,
    loaded_at: 100,
    last_error: null,
    last_error_at: null,
    failing_since: null,
    disk_newer: false,
    disk_changed_at: null,
    signature_expiry: null,
    ...extra,
  });
  const state = {
    /** What the server serves (answers SOA for). */
    serving: new Set(['a.example.', 'b.example.']),
    /** What /zones reports; by default the same zones. */
    report: null as ZoneReportEntry[] | null,
    statusDown: false,
    /** Runs after each report is taken (to change the server between two asks). */
    onStatus: null as (() => void) | null,
    asked: [] as string[],
    applied: [] as boolean[],
    logs: [] as string[],
    now: 1_000_000_000,
  };
  const deps: CheckerDeps = {
    probe: async (_t, _tr, qname): Promise<ProbeResult> => {
      state.asked.push(qname);
      return state.serving.has(qname)
        ? { ok: true, detail: 'ok', serial: 1, ms: 1 }
        : { ok: false, detail: 'rcode REFUSED', serial: null, ms: 1 };
    },
    readyz: null,
    bird: {
      apply: async (announce) => {
        state.applied.push(announce);
        return [];
      },
    },
    log: (m) => state.logs.push(m),
    now: () => state.now,
    maintenance: () => false,
    zoneStatus: async () => {
      if (state.statusDown) return { ok: false, detail: 'http://127.0.0.1:9153/zones: fetch failed' };
      const zones = state.report ?? [...state.serving].map((z) => entry(z));
      state.onStatus?.();
      return { ok: true, report: { now: state.now / 1000, zones } };
    },
    zoneFiles: () => {
      throw new Error('the directory is not read when /zones answers');
    },
  };
  const full: HealthConfig = {
    ...HEALTH_DEFAULTS,
    maintenanceFile: null,
    transports: ['udp'],
    ...cfg,
    prefixes: [{ prefix: '198.51.100.0/24', protocol: 'anycast4' }],
  };
  const c = new HealthChecker(full, [{ host: '127.0.0.1', port: 53, family: 4 }], static_, deps);
  return { c, state, entry };
}

t.test('the probe follows the zones the server serves', async (t) => {
  const { c, state, entry } = following({ rise: 1, fall: 2 });
  await c.round();
  t.equal(c.announced, true);
  t.same(c.probedZones.sort(), ['a.example.', 'b.example.']);

  // b.example. removed on purpose: file deleted, server reloaded. It answers REFUSED for it now.
  state.serving.delete('b.example.');
  for (let i = 0; i < 5; i++) {
    state.asked = [];
    const r = await c.round();
    t.equal(r.healthy, true, `round ${i}: a removed zone is not a failure (${r.reasons.join('; ')})`);
    t.notOk(state.asked.includes('b.example.'), 'the removed zone is not probed');
  }
  t.equal(c.announced, true, 'stays announced');
  t.same(
    state.applied.filter((a) => !a),
    [],
    'never withdrawn',
  );

  // Removed between the report and the probe: the report still lists it, the server refuses it,
  // and asked again it no longer lists it — not a failure either.
  state.report = ['a.example.', 'b.example.'].map((z) => entry(z));
  state.onStatus = () => {
    state.report = null; // the second time it is asked, the reload has happened
  };
  const raced = await c.check();
  t.equal(raced.healthy, true, `a zone removed mid-round is not a failure (${raced.reasons.join('; ')})`);
  state.onStatus = null;

  // A new zone is probed from the next round on.
  state.serving.add('c.example.');
  state.asked = [];
  await c.round();
  t.ok(state.asked.includes('c.example.'), 'the added zone is probed');

  // A zone the server lists but does not answer for is a failure.
  state.report = [...state.serving].map((z) => entry(z));
  state.serving.delete('c.example.');
  const r = await c.check();
  t.equal(r.healthy, false);
  t.match(r.reasons, [/c\.example\. SOA: rcode REFUSED/]);
});

t.test('a zone file that never loaded, or /zones unreachable, fails the round', async (t) => {
  const { c, state, entry } = following({ rise: 1, fall: 1 });
  await c.round();
  t.equal(c.announced, true);
  state.report = [
    entry('a.example.'),
    entry('b.example.'),
    entry('d.example.', {
      state: 'failed',
      serial: null,
      last_error: '/zones/d.example.zone:3:1: error: no SOA record [POPDNS_E_NO_SOA]',
      last_error_at: 999_999,
      failing_since: 999_999,
    }),
  ];
  const r = await c.round();
  t.equal(r.healthy, false);
  t.match(r.reasons, [/d\.example\.zone: zone d\.example\. is not served: .*POPDNS_E_NO_SOA/]);
  t.equal(c.announced, false, 'withdrawn');
  state.report = null;
  await c.round();
  t.equal(c.announced, true);
  state.statusDown = true;
  state.asked = [];
  const down = await c.round();
  t.match(down.reasons, [/zone status: .*fetch failed/]);
  t.same(state.asked.sort(), ['a.example.', 'b.example.'], 'the last known zones are still probed');
  t.equal(c.announced, false, 'cannot tell: withdrawn');
});

t.test('max-serial-lag: a newer zone file that fails to load withdraws after the lag', async (t) => {
  const { c, state, entry } = following({ rise: 1, fall: 2, maxSerialLagMs: 60_000 });
  await c.round();
  t.equal(c.announced, true);
  const dir = tmpDir(t);
  const file = join(dir, 'a.example.zone');
  writeFileSync(file, '$ORIGIN a.example.\n@ SOA ns h 2 1 1 1 1\n@ NS ns.example.net.\n@ A 192.0.2.1 (\n');
  // The server tried the newer file at T and failed; it serves serial 1 since.
  const failedAt = state.now / 1000;
  state.report = [
    entry('a.example.', {
      file,
      disk_newer: true,
      disk_changed_at: failedAt - 5,
      last_error: `${file}:4:14: error: unbalanced parentheses [POPDNS_E_SYNTAX]`,
      last_error_at: failedAt,
      failing_since: failedAt,
    }),
    entry('b.example.'),
  ];
  state.now += 30_000;
  t.equal((await c.round()).healthy, true, 'within the lag: healthy');
  state.now += 31_000;
  const late = await c.round();
  t.equal(late.healthy, false, 'past the lag: stale');
  t.match(late.reasons, [/a\.example\. serves serial 1 but the newer .* fails to load .*since 61s/]);
  t.equal(c.announced, true, 'fall=2: one stale round is not enough');
  state.now += 1000;
  await c.round();
  t.equal(c.announced, false, 'withdrawn after the lag and fall rounds');

  // --once: a fresh checker knows the same from the server's times in one round.
  const once = following({ maxSerialLagMs: 60_000 });
  once.state.report = state.report;
  once.state.now = state.now;
  const r = await once.c.check();
  t.equal(r.healthy, false, 'one round is enough to see a zone stale for longer than the lag');

  // Not reloaded yet: the file has a higher serial (stale after the lag, counted from its ctime), or
  // it is gone (a zone being removed: never stale).
  writeFileSync(file, '$ORIGIN a.example.\n@ SOA ns h 2 1 1 1 1\n@ NS ns.example.net.\n');
  const ctime = statSync(file).ctimeMs / 1000;
  const fresh = following({ maxSerialLagMs: 60_000 });
  fresh.state.report = [entry('a.example.', { file, disk_newer: true, disk_changed_at: ctime })];
  fresh.state.now = (ctime + 10) * 1000;
  t.equal((await fresh.c.check()).healthy, true, 'newer serial on disk, within the lag');
  fresh.state.now = (ctime + 61) * 1000;
  t.match((await fresh.c.check()).reasons, [/serves serial 1 but .* has 2 since 61s/]);
  rmSync(file);
  t.equal((await fresh.c.check()).healthy, true, 'a deleted zone file is a removal, not a stale zone');
});

t.test('a static health.zones list is probed as given', async (t) => {
  const { c, state } = following({}, ['a.example.']);
  state.serving.add('z.example.');
  await c.check();
  t.same(state.asked, ['a.example.']);
});
