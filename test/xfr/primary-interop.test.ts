/**
 * popdns as a primary to real secondaries, each with TSIG hmac-sha256: Knot, BIND 9 (named) and NSD.
 * Each cell: the initial AXFR, then a one-record change + SIGHUP → popdns NOTIFYs → the secondary
 * pulls an IXFR (proved by popdns's transfer log line for that peer, "type IXFR serial 1 → 2", and
 * its size: a few records, not the zone), and a TSIG failure: a zone the secondary requests with a key
 * popdns does not know is answered NOTAUTH/BADKEY and never transferred. popdns also serves the
 * differential corpus (test/diff) and each secondary follows it: after the transfers Knot answers
 * every corpus query like popdns (test/diff's comparison, with its documented tolerances); BIND and
 * NSD give the same data at each query name (rcode, flags, the answer RRsets owned by the name: their
 * authority and additional sections, CNAME-chain and meta-type policies are their own, and test/diff
 * does not cover them).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import packet from 'dns-packet';
import t, { type Test } from 'tap';
import { compareCorpus, loadCorpus } from '../helpers/corpus.js';
import { queryUdp } from '../helpers/dns.js';
import { freePort, needTool, type Proc, startPopdns, startProcess, tmpDir } from '../helpers/peers.js';

const SECRET = Buffer.from('popdns-interop-test-secret-32by!').toString('base64');
const WRONG = Buffer.from('a-key-popdns-has-never-heard-of!').toString('base64');
const HOSTS = 400;
const corpus = loadCorpus();
/** The corpus zones but example.com., which this test serves itself (and changes). */
const CORPUS = Object.keys(corpus.zones).filter((z) => z !== 'example.com');

function zoneText(serial: number, changed: boolean): string {
  const lines = [
    '$ORIGIN example.com.',
    '$TTL 600',
    `@ SOA ns1.example.net. hostmaster.example.com. ${serial} 3600 600 1209600 300`,
    '@ NS ns1.example.net.',
  ];
  for (let i = 0; i < HOSTS; i++) lines.push(`h${i} A 10.0.${i >> 8}.${i & 255}`);
  lines.push(`www A ${changed ? '192.0.2.2' : '192.0.2.1'}`);
  return `${lines.join('\n')}\n`;
}

const BAD_ZONE =
  '$ORIGIN bad.test.\n$TTL 600\n@ SOA ns1.example.net. h.bad.test. 1 3600 600 1209600 300\n@ NS ns1.example.net.\n';

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 20000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      if (await cond()) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function serialAt(port: number, zone: string): Promise<number | null> {
  const r = await queryUdp(port, zone, 'SOA');
  const a = r.answers?.find((x) => x.type === 'SOA') as { data: packet.SoaData } | undefined;
  return a?.data.serial ?? null;
}

/** popdns with the two zones, the key, transfer.allow for it and transfer.notify to the secondary. */
async function startPrimary(
  tt: Test,
  secondaryPort: number,
): Promise<Proc & { port: number; metricsPort: number; zones: string }> {
  const dir = tmpDir(tt, 'popdns-xfr-primary-');
  const zones = join(dir, 'zones');
  mkdirSync(zones);
  writeFileSync(join(zones, 'example.com.zone'), zoneText(1, false));
  writeFileSync(join(zones, 'bad.test.zone'), BAD_ZONE);
  for (const z of CORPUS) writeFileSync(join(zones, `${z}.zone`), corpus.zones[z]!);
  const cfg = join(dir, 'popdns.yaml');
  writeFileSync(
    cfg,
    [
      `data-dir: ${join(dir, 'data')}`,
      'tsig-keys:',
      `  xfr.example.net: { algorithm: hmac-sha256, secret: "${SECRET}" }`,
      'transfer:',
      '  allow:',
      '    - { from: 127.0.0.0/8, key: xfr.example.net }',
      '  notify:',
      `    - { to: "127.0.0.1:${secondaryPort}", key: xfr.example.net }`,
      '',
    ].join('\n'),
  );
  const p = await startPopdns(tt, zones, ['--config', cfg, '--workers', '1']);
  return { ...p, zones };
}

/** Bytes of the IXFR popdns served to the secondary, from its log line. */
function ixfrLine(out: string): RegExpMatchArray | null {
  return /xfr out: zone example\.com\. peer 127\.0\.0\.1 type IXFR serial 1 → 2 records (\d+) messages \d+ bytes (\d+)/.exec(
    out,
  );
}

function axfrBytes(out: string): number {
  const m =
    /xfr out: zone example\.com\. peer 127\.0\.0\.1 type AXFR serial - → 1 records \d+ messages \d+ bytes (\d+)/.exec(
      out,
    );
  return m ? Number(m[1]) : 0;
}

async function runCell(
  tt: Test,
  name: string,
  secPort: number,
  startSecondary: (primaryPort: number) => Promise<() => string>,
): Promise<void> {
  const isKnot = name === 'knot';
  const primary = await startPrimary(tt, secPort);
  const peerLog = await startSecondary(primary.port);
  await waitFor(`${name}: initial AXFR`, async () => (await serialAt(secPort, 'example.com')) === 1);
  const axfr = axfrBytes(primary.output());
  tt.ok(axfr > 4000, `${name}: initial AXFR of ${HOSTS + 3} records, ${axfr} bytes`);
  // The change: one A record, serial 1 → 2; SIGHUP; popdns NOTIFYs, the secondary pulls.
  writeFileSync(join(primary.zones, 'example.com.zone'), zoneText(2, true));
  primary.child.kill('SIGHUP');
  await waitFor(`${name}: serial 2 after NOTIFY`, async () => (await serialAt(secPort, 'example.com')) === 2);
  const r = await queryUdp(secPort, 'www.example.com', 'A');
  tt.same(
    r.answers?.map((a) => (a as { data: unknown }).data),
    ['192.0.2.2'],
    `${name} serves the changed record`,
  );
  await waitFor(`${name}: popdns logs the IXFR`, () => ixfrLine(primary.output()) !== null, 5000);
  const m = ixfrLine(primary.output())!;
  tt.equal(Number(m[1]), 6, `${name}: IXFR of 6 records (SOA, old SOA, -www, new SOA, +www, SOA)`);
  tt.ok(Number(m[2]) < axfr / 5, `${name}: IXFR ${m[2]} bytes vs AXFR ${axfr}`);
  tt.match(
    primary.output(),
    /notify sent: zone example\.com\. serial 2 to 127\.0\.0\.1:\d+ key xfr\.example\.net\.: acknowledged/,
  );
  // TSIG failure: bad.test. requested with a key popdns does not know (its SOA query, or the transfer).
  await waitFor(`${name}: popdns answers BADKEY`, async () => {
    const res = await fetch(`http://127.0.0.1:${primary.metricsPort}/metrics`);
    // The peer's SOA query counts under kind="query", its transfer under kind="xfr".
    return /popdns_tsig_failures_total\{error="badkey",kind="(?:query|xfr)"\} [1-9]/.test(await res.text());
  });
  tt.not(await serialAt(secPort, 'bad.test').catch(() => null), 1, `${name} never got bad.test.`);
  tt.notMatch(primary.output(), /xfr out: zone bad\.test\./, 'no data went out for bad.test.');
  // The corpus, transferred to this secondary, answered like popdns answers it.
  await waitFor(`${name}: corpus zones transferred`, async () => {
    for (const z of CORPUS) if ((await serialAt(secPort, z)) === null) return false;
    return true;
  });
  const cmp = isKnot
    ? await compareCorpus(corpus, primary.port, secPort, true)
    : await compareCorpus(corpus, secPort, primary.port, false, { answerOnly: true });
  tt.equal(
    cmp.mismatches.length,
    0,
    `${name}: ${cmp.compared} corpus queries answered like the primary${isKnot ? '' : ' (the data at each name)'}\n${cmp.mismatches
      .map((x) => x.split('\n')[0])
      .slice(0, 200)
      .join('\n')}`,
  );
  tt.comment(`${name} log tail:\n${peerLog().split('\n').slice(-6).join('\n')}`);
}

t.test('Knot secondary', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const dir = tmpDir(tt, 'popdns-xfr-knot-');
  const port = await freePort();
  await runCell(tt, 'knot', port, async (primaryPort) => {
    writeFileSync(
      join(dir, 'knot.conf'),
      [
        'server:',
        `    listen: 127.0.0.1@${port}`,
        `    rundir: ${dir}`,
        'database:',
        `    storage: ${dir}/db`,
        'log:',
        `  - target: ${dir}/knot.log`,
        '    any: info',
        'key:',
        '  - id: xfr.example.net.',
        '    algorithm: hmac-sha256',
        `    secret: ${SECRET}`,
        '  - id: unknown.example.net.',
        '    algorithm: hmac-sha256',
        `    secret: ${WRONG}`,
        'remote:',
        '  - id: primary',
        `    address: 127.0.0.1@${primaryPort}`,
        '    key: xfr.example.net.',
        '  - id: badprimary',
        `    address: 127.0.0.1@${primaryPort}`,
        '    key: unknown.example.net.',
        'acl:',
        '  - id: notify_from_primary',
        '    address: 127.0.0.0/8',
        '    key: xfr.example.net.',
        '    action: notify',
        'template:',
        '  - id: default',
        `    storage: ${dir}/zones`,
        '    zonefile-sync: -1',
        '    zonefile-load: none',
        '    journal-content: all',
        '    master: primary',
        '    acl: notify_from_primary',
        'zone:',
        '  - domain: example.com.',
        '  - domain: bad.test.',
        '    master: badprimary',
        ...CORPUS.map((z) => `  - domain: ${z}.`),
        '',
      ].join('\n'),
    );
    mkdirSync(join(dir, 'db'));
    mkdirSync(join(dir, 'zones'));
    await startProcess(tt, 'knotd', ['-c', join(dir, 'knot.conf')], () => true);
    return () => readFileSync(join(dir, 'knot.log'), 'utf8');
  });
  const log = readFileSync(join(dir, 'knot.log'), 'utf8');
  tt.match(
    log,
    /\[example\.com\.\] AXFR, incoming, remote 127\.0\.0\.1@\d+, finished/,
    'Knot says AXFR first',
  );
  tt.match(log, /\[example\.com\.\] IXFR, incoming, remote 127\.0\.0\.1@\d+, finished/, 'then IXFR');
  tt.notMatch(log, /AXFR-style IXFR/, 'not an AXFR-style answer');
});

t.test('BIND 9 (named) secondary', async (tt) => {
  if (!needTool(tt, 'named', 'bind9')) return;
  const dir = tmpDir(tt, 'popdns-xfr-named-');
  const port = await freePort();
  await runCell(tt, 'named', port, async (primaryPort) => {
    writeFileSync(
      join(dir, 'named.conf'),
      [
        `key "xfr.example.net." { algorithm hmac-sha256; secret "${SECRET}"; };`,
        `key "unknown.example.net." { algorithm hmac-sha256; secret "${WRONG}"; };`,
        'controls { };',
        `options { directory "${dir}"; pid-file "${dir}/named.pid"; session-keyfile "${dir}/session.key";`,
        `  listen-on port ${port} { 127.0.0.1; }; listen-on-v6 { none; };`,
        '  recursion no; dnssec-validation no; notify no; check-names secondary ignore; };',
        `zone "example.com" { type secondary; file "example.com.db";`,
        `  primaries { 127.0.0.1 port ${primaryPort} key "xfr.example.net."; }; };`,
        `zone "bad.test" { type secondary; file "bad.test.db";`,
        `  primaries { 127.0.0.1 port ${primaryPort} key "unknown.example.net."; }; };`,
        ...CORPUS.map(
          (z) =>
            `zone "${z}" { type secondary; file "${z}.db"; primaries { 127.0.0.1 port ${primaryPort} key "xfr.example.net."; }; };`,
        ),
        '',
      ].join('\n'),
    );
    const p = await startProcess(tt, 'named', ['-g', '-c', join(dir, 'named.conf')], (o) =>
      o.includes('running'),
    );
    return () => p.output();
  });
});

t.test('NSD secondary', async (tt) => {
  if (!needTool(tt, 'nsd', 'nsd')) return;
  const dir = tmpDir(tt, 'popdns-xfr-nsd-');
  const port = await freePort();
  await runCell(tt, 'nsd', port, async (primaryPort) => {
    writeFileSync(
      join(dir, 'nsd.conf'),
      [
        'server:',
        '  ip-address: 127.0.0.1',
        `  port: ${port}`,
        '  do-ip6: no',
        `  zonesdir: "${dir}"`,
        '  database: ""',
        `  zonelistfile: "${dir}/zone.list"`,
        `  xfrdfile: "${dir}/xfrd.state"`,
        `  xfrdir: "${dir}"`,
        `  pidfile: "${dir}/nsd.pid"`,
        `  logfile: "${dir}/nsd.log"`,
        '  username: ""',
        '  verbosity: 2',
        'remote-control:',
        '  control-enable: no',
        'key:',
        '  name: xfr.example.net.',
        '  algorithm: hmac-sha256',
        `  secret: "${SECRET}"`,
        'key:',
        '  name: unknown.example.net.',
        '  algorithm: hmac-sha256',
        `  secret: "${WRONG}"`,
        'zone:',
        '  name: example.com',
        '  zonefile: example.com.zone',
        `  request-xfr: 127.0.0.1@${primaryPort} xfr.example.net.`,
        '  allow-notify: 127.0.0.1 xfr.example.net.',
        'zone:',
        '  name: bad.test',
        '  zonefile: bad.test.zone',
        `  request-xfr: 127.0.0.1@${primaryPort} unknown.example.net.`,
        ...CORPUS.flatMap((z) => [
          'zone:',
          `  name: ${z}`,
          `  zonefile: ${z}.zone`,
          `  request-xfr: 127.0.0.1@${primaryPort} xfr.example.net.`,
        ]),
        '',
      ].join('\n'),
    );
    writeFileSync(join(dir, 'nsd.log'), '');
    await startProcess(tt, 'nsd', ['-d', '-c', join(dir, 'nsd.conf')], () => true);
    return () => readFileSync(join(dir, 'nsd.log'), 'utf8');
  });
});
