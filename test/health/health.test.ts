/**
 * The health probe: BIRD's control-socket protocol (against a scripted socket and a real bird), the
 * DNS verdict, rise/fall hysteresis and the immediate withdraw reasons, and `popdns health` end to end
 * against a real popdns and a real BIRD.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
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
import { freePort, hasTool, needTool, startProcess, tmpDir } from '../helpers/peers.js';

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

  const health = await startProcess(t, process.execPath, ['dist/cli.js', 'health', '--config', config], (o) =>
    o.includes('DOWN -> UP'),
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
  await waitFor(/UP -> DOWN, withdrawing: maintenance file/, 'maintenance file withdraws');
  if (hasTool('birdc')) t.match(showState(), /anycast4\s+Static\s+master4\s+down/);
  spawnSync('rm', ['-f', maintenance]);
  await waitFor(/DOWN -> UP[^\n]*\n[^]*DOWN -> UP/, 'announced again when the file goes');

  // SIGTERM to the server: /readyz 503 → withdraw at once while the server still answers.
  server.child.kill('SIGTERM');
  await waitFor(/UP -> DOWN, withdrawing: server is draining/, 'drain withdraws');
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
