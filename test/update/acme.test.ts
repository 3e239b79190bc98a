/**
 * The ACME DNS-01 path end to end with real software, all on loopback: pebble (the ACME test CA, with
 * a self-made TLS certificate) validates against a popdns secondary; the ACME clients send their RFC
 * 2136 updates, signed with TSIG, to a popdns primary, which NOTIFYs the secondary, which pulls the
 * change by IXFR. lego (`--dns rfc2136`, hmac-sha256 key; www) and certbot (dns-rfc2136 plugin,
 * hmac-sha512 key; the apex and its wildcard) each obtain a certificate, side by side. Pass: the
 * certificate file exists and names the domains, and afterwards the challenge TXT is gone from the
 * primary and from the secondary. The seconds from the update (the primary's log line) to the TXT
 * answered by the secondary (polled every 20 ms) are printed as a comment. Last, acme.sh's
 * `dns_nsupdate` commands (`nsupdate -k FILE`) with a key file cut from `popdns tsig-keygen` output
 * (acme.sh itself is not packaged here).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import packet from 'dns-packet';
import t, { type Test } from 'tap';
import { queryUdp } from '../helpers/dns.js';
import {
  freePort,
  hasTool,
  needTool,
  plainEnv,
  type Proc,
  REQUIRE_PEERS,
  startProcess,
  stopProcess,
  tmpDir,
} from '../helpers/peers.js';
import { newSecret, serialOf, waitUntil } from '../helpers/secondary.js';
import { spawnSync } from '../helpers/spawn.js';

const ZONE = 'acme.test';
const LEGO_KEY = 'lego.acme.test';
const CERTBOT_KEY = 'certbot.acme.test';
const ACMESH_KEY = 'acmesh.acme.test';
const XFR_KEY = 'xfr.acme.test';
const ZONE_TEXT = [
  `$ORIGIN ${ZONE}.`,
  '$TTL 300',
  '@ SOA ns1 hostmaster 1 3600 600 86400 300',
  '@ NS ns1',
  'ns1 A 127.0.0.1',
  'www A 127.0.0.1',
  '',
].join('\n');

/** `popdns tsig-keygen NAME`, cut in two: the `tsig-keys` entry and the BIND `key` block. */
function tsigKeygen(name: string): { yaml: string; bind: string } {
  const r = spawnSync(process.execPath, ['dist/cli.js', 'tsig-keygen', name], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  const yaml = new RegExp(`^  ${name.replace(/\./g, '\\.')}: \\{.*\\}$`, 'm').exec(r.stdout)?.[0];
  const bind = /^key "[^"]+" \{[\s\S]*?^\};$/m.exec(r.stdout)?.[0];
  if (r.status !== 0 || !yaml || !bind) throw new Error(`popdns tsig-keygen: ${r.stdout}${r.stderr}`);
  return { yaml: yaml.trim(), bind: `${bind}\n` };
}

/**
 * Starts `popdns serve` with a config of its own in `dir` (zones in `dir/zones`), listening on `port`.
 * Like test/helpers/secondary.ts's startSecondary, but with a 60 s bound: this file starts three servers
 * side by side, and on a loaded CI machine a node start alone can take most of 30 s.
 */
async function startServer(
  tt: Test,
  dir: string,
  port: number,
  yaml: string[],
): Promise<Proc & { port: number }> {
  mkdirSync(join(dir, 'zones'), { recursive: true });
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    [
      `listen: ["127.0.0.1:${port}"]`,
      `metrics: 127.0.0.1:${await freePort()}`,
      `zones: ${join(dir, 'zones')}`,
      `data-dir: ${join(dir, 'data')}`,
      'workers: 1',
      'drain: 0s',
      'control: false',
      ...yaml,
      '',
    ].join('\n'),
  );
  const p = await startProcess(
    tt,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', config],
    (o) => o.includes('ready:'),
    60_000,
  );
  return { ...p, port };
}

/** Runs a client to completion (bounded: killed by PID after `ms`); its exit code and output. */
function run(
  tt: Test,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  ms: number,
): Promise<{ code: number | null; out: string }> {
  const child: ChildProcess = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  tt.teardown(() => stopProcess(child));
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      out += `\n[killed after ${ms} ms]`;
      child.kill('SIGKILL');
    }, ms);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

/** The TXT strings a server answers for `name` (empty for NXDOMAIN/NODATA), or null with no answer. */
async function txtAt(port: number, name: string): Promise<string[] | null> {
  try {
    const m = await queryUdp(port, name, 'TXT');
    return (m.answers ?? [])
      .filter((a): a is packet.TxtAnswer => a.type === 'TXT')
      .map((a) => [a.data].flat().map(String).join(''));
  } catch {
    return null;
  }
}

/**
 * Polls the secondary for the challenge TXT every 20 ms until `stop()`; when it first answered one (ms
 * since the epoch), or null. `stop(ms)` first waits up to `ms` for it to be seen.
 */
function watchSecondary(port: number, name: string): { stop(waitMs?: number): Promise<number | null> } {
  let seen: number | null = null;
  let running = true;
  const loop = (async () => {
    while (running && seen === null) {
      const s = await txtAt(port, name);
      if (s && s.length > 0) seen = Date.now();
      else await new Promise((r) => setTimeout(r, 20));
    }
  })();
  return {
    async stop(waitMs = 0) {
      await waitUntil(() => seen !== null, waitMs);
      running = false;
      await loop;
      return seen;
    },
  };
}

/**
 * When the primary applied `key`'s first update adding a record, from its log line
 * (`2026-11-30T13:02:32.471Z info server: update zone=… key=… result=NOERROR added=1 …`), in ms.
 */
function updateTime(primaryLog: string, key: string): number | null {
  const re = new RegExp(
    `^(\\S+) .*update zone=${ZONE.replace(/\./g, '\\.')}\\. key=${key.replace(/\./g, '\\.')}\\. .*result=NOERROR added=1`,
    'm',
  );
  const t = Date.parse(re.exec(primaryLog)?.[1] ?? '');
  return Number.isNaN(t) ? null : t;
}

/** Seconds from `key`'s update at the primary to the TXT answered by the secondary, as text. */
function delay(primaryLog: string, key: string, seen: number | null): string {
  const at = updateTime(primaryLog, key);
  return at !== null && seen !== null ? ((seen - at) / 1000).toFixed(2) : '?';
}

/** Asserts the challenge TXT is gone from the primary and (bounded wait) from the secondary. */
async function assertCleaned(
  tt: Test,
  primaryPort: number,
  secondaryPort: number,
  name: string,
): Promise<void> {
  tt.same(await txtAt(primaryPort, name), [], `${name} TXT gone from the primary`);
  await waitUntil(async () => (await txtAt(secondaryPort, name))?.length === 0, 10_000);
  tt.same(await txtAt(secondaryPort, name), [], `${name} TXT gone from the secondary`);
}

interface ClientResult {
  code: number | null;
  out: string;
  /** When the secondary first answered the challenge TXT (ms since the epoch); null: never. */
  seen: number | null;
}

/** Runs an ACME client while watching its challenge name propagate. */
async function runClient(
  tt: Test,
  secondaryPort: number,
  challenge: string,
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  cwd: string,
  ms: number,
): Promise<ClientResult> {
  const watch = watchSecondary(secondaryPort, challenge);
  const r = await run(tt, cmd, args, env, cwd, ms);
  return { ...r, seen: await watch.stop() };
}

/** Why certbot with the rfc2136 plugin cannot run here, or null when it can. */
function certbotMissing(): string | null {
  // certbot is a Debian python3 program: the system python, whatever python is first on PATH.
  if (!existsSync('/usr/bin/certbot')) return '/usr/bin/certbot missing (Debian package certbot)';
  const plugin = spawnSync('/usr/bin/python3', ['-c', 'import certbot_dns_rfc2136'], { stdio: 'ignore' });
  if (plugin.status !== 0) return 'certbot_dns_rfc2136 missing (Debian package python3-certbot-dns-rfc2136)';
  return null;
}

/** The subject alternative names of a PEM certificate (the first of a chain). */
function sanOf(pemFile: string): string {
  return new X509Certificate(readFileSync(pemFile)).subjectAltName ?? '';
}

t.test('ACME DNS-01 with pebble: lego and certbot through a popdns primary and secondary', async (tt) => {
  if (!needTool(tt, 'pebble', 'pebble') || !needTool(tt, 'openssl', 'openssl')) return;
  const dir = tmpDir(tt, 'popdns-acme-');

  // pebble's own TLS certificate, for 127.0.0.1.
  const cert = join(dir, 'pebble-cert.pem');
  const key = join(dir, 'pebble-key.pem');
  const ssl = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { encoding: 'utf8', timeout: 20_000 },
  );
  tt.equal(ssl.status, 0, "openssl made pebble's certificate", { stderr: ssl.stderr });

  // The primary takes the updates and NOTIFYs the secondary; the secondary is where the CA looks.
  // pebble validates DNS-01 by asking the secondary; no random sleeps, no nonce rejections, and
  // PEBBLE_VA_ALWAYS_VALID unset: the TXT must really be there. The three start side by side.
  const legoSecret = newSecret();
  const xfrSecret = newSecret();
  const certbotSecret = Buffer.from(newSecret() + newSecret(), 'base64').toString('base64'); // 64 bytes
  const acmeshKey = tsigKeygen(ACMESH_KEY);
  const keys = [
    'tsig-keys:',
    `  ${acmeshKey.yaml}`,
    `  ${LEGO_KEY}: { algorithm: hmac-sha256, secret: "${legoSecret}" }`,
    `  ${CERTBOT_KEY}: { algorithm: hmac-sha512, secret: "${certbotSecret}" }`,
  ];
  const [primPort, secPort, acmePort, mgmtPort, httpPort, tlsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const pdir = join(dir, 'primary');
  mkdirSync(join(pdir, 'zones'), { recursive: true });
  writeFileSync(join(pdir, 'zones', `${ZONE}.zone`), ZONE_TEXT);
  const pebbleConfig = join(dir, 'pebble.json');
  writeFileSync(
    pebbleConfig,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${mgmtPort}`,
        certificate: cert,
        privateKey: key,
        httpPort,
        tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  );
  const acmeRule = (k: string): string =>
    `    - { key: ${k}, names: ["_acme-challenge", "_acme-challenge.*"], types: [TXT] }`;
  const [primary, secondary, pebble] = await Promise.all([
    startServer(tt, pdir, primPort, [
      ...keys,
      `  ${XFR_KEY}: { algorithm: hmac-sha256, secret: "${xfrSecret}" }`,
      'transfer:',
      `  allow: [{ from: 127.0.0.0/8, key: ${XFR_KEY} }]`,
      `  notify: [{ to: "127.0.0.1:${secPort}", key: ${XFR_KEY} }]`,
      'updates:',
      `  ${ZONE}:`,
      acmeRule(LEGO_KEY),
      acmeRule(CERTBOT_KEY),
      acmeRule(ACMESH_KEY),
    ]),
    // The secondary (a PoP) knows only the transfer key.
    startServer(tt, join(dir, 'secondary'), secPort, [
      'tsig-keys:',
      `  ${XFR_KEY}: { algorithm: hmac-sha256, secret: "${xfrSecret}" }`,
      'secondaries:',
      `  - { zone: ${ZONE}, primaries: ["127.0.0.1:${primPort}"], key: ${XFR_KEY} }`,
    ]),
    // `env` execs pebble, so the PID startProcess stops is pebble's.
    startProcess(
      tt,
      'env',
      [
        '-u',
        'PEBBLE_VA_ALWAYS_VALID',
        'PEBBLE_VA_NOSLEEP=1',
        'PEBBLE_WFE_NONCEREJECT=0',
        'pebble',
        '-config',
        pebbleConfig,
        '-dnsserver',
        `127.0.0.1:${secPort}`,
      ],
      (o) => o.includes('ACME directory available'),
      30_000,
    ),
  ]);
  // The primary NOTIFYs at start; the secondary also polls its primary (a refused first try is retried).
  tt.ok(
    await waitUntil(async () => (await serialOf(secondary.port, ZONE)) === 1, 30_000),
    'secondary has serial 1',
  );
  tt.match(pebble.output(), 'Disabling random VA sleeps', 'pebble validates at once');
  const directory = `https://127.0.0.1:${acmePort}/dir`;

  // lego and certbot run side by side (the primary applies their updates one after the other).
  const legoName = `www.${ZONE}`;
  const legoJob = hasTool('lego')
    ? runClient(
        tt,
        secondary.port,
        `_acme-challenge.${legoName}`,
        'lego',
        [
          '--server',
          directory,
          '--email',
          'acme@example.com',
          '--accept-tos',
          '--domains',
          legoName,
          '--dns',
          'rfc2136',
          // lego 4.x waits until the zone's NS names, asked on port 53, serve the TXT; on loopback
          // that cannot work, so --dns.disable-cp: it then asks the resolver (the secondary) once,
          // sleeps the polling interval (RFC2136_POLLING_INTERVAL, 2 s by default; 4 s here, room for
          // a loaded machine: certbot, running alongside, takes longer anyway) and tells the CA to look.
          '--dns.resolvers',
          `127.0.0.1:${secondary.port}`,
          '--dns.disable-cp',
          '--path',
          join(dir, 'lego'),
          'run',
        ],
        {
          ...plainEnv(),
          LEGO_CA_CERTIFICATES: cert,
          RFC2136_NAMESERVER: `127.0.0.1:${primary.port}`,
          RFC2136_TSIG_ALGORITHM: 'hmac-sha256.',
          RFC2136_TSIG_KEY: LEGO_KEY,
          RFC2136_TSIG_SECRET: legoSecret,
          RFC2136_POLLING_INTERVAL: '4',
        },
        dir,
        60_000,
      )
    : null;

  // The apex and its wildcard: two TXT records at `_acme-challenge.acme.test` at once (one RRset),
  // removed one RR at a time; the policy's `_acme-challenge` (apex) rule.
  const certbotName = ZONE;
  const cdir = join(dir, 'certbot');
  const certbotJob = certbotMissing()
    ? null
    : (() => {
        mkdirSync(cdir);
        const ini = join(cdir, 'rfc2136.ini');
        writeFileSync(
          ini,
          [
            'dns_rfc2136_server = 127.0.0.1',
            `dns_rfc2136_port = ${primary.port}`,
            `dns_rfc2136_name = ${CERTBOT_KEY}`,
            `dns_rfc2136_secret = ${certbotSecret}`,
            'dns_rfc2136_algorithm = HMAC-SHA512',
            '',
          ].join('\n'),
        );
        chmodSync(ini, 0o600); // certbot warns about credentials others can read
        const env: NodeJS.ProcessEnv = Object.fromEntries(
          Object.entries(plainEnv()).filter(([k]) => !k.startsWith('PYTHON') && !k.startsWith('PYENV')),
        );
        return runClient(
          tt,
          secondary.port,
          `_acme-challenge.${certbotName}`,
          '/usr/bin/certbot',
          [
            'certonly',
            '--server',
            directory,
            '--dns-rfc2136',
            '--dns-rfc2136-credentials',
            ini,
            '--dns-rfc2136-propagation-seconds',
            '3',
            '-d',
            certbotName,
            '-d',
            `*.${certbotName}`,
            '--config-dir',
            join(cdir, 'config'),
            '--work-dir',
            join(cdir, 'work'),
            '--logs-dir',
            join(cdir, 'logs'),
            '--non-interactive',
            '--agree-tos',
            '--register-unsafely-without-email',
          ],
          { ...env, HOME: cdir, REQUESTS_CA_BUNDLE: cert },
          dir,
          80_000,
        );
      })();

  await tt.test('lego --dns rfc2136', async (lt) => {
    if (!needTool(lt, 'lego', 'lego') || !legoJob) return;
    const r = await legoJob;
    const crt = join(dir, 'lego', 'certificates', `${legoName}.crt`);
    lt.equal(r.code, 0, 'lego exited 0');
    lt.ok(existsSync(crt), `certificate written: ${crt}`);
    if (existsSync(crt)) lt.match(sanOf(crt), `DNS:${legoName}`, 'for the name asked');
    if (r.code !== 0 || !existsSync(crt)) lt.comment(`lego:\n${r.out}\npebble:\n${pebble.output()}`);
    lt.ok(r.seen !== null, 'the secondary served the challenge TXT while lego ran');
    lt.comment(`lego: TXT at the secondary ${delay(primary.output(), LEGO_KEY, r.seen)} s after the update`);
    await assertCleaned(lt, primary.port, secondary.port, `_acme-challenge.${legoName}`);
    lt.match(
      primary.output(),
      new RegExp(`update zone=${ZONE}\\. key=${LEGO_KEY}\\. .*result=NOERROR added=1`),
    );
  });

  await tt.test('certbot --dns-rfc2136', async (ct) => {
    const missing = certbotMissing();
    if (missing || !certbotJob) {
      if (REQUIRE_PEERS) ct.fail(`${missing} and POPDNS_REQUIRE_PEERS=1`);
      else ct.skip(String(missing), () => {});
      return;
    }
    const r = await certbotJob;
    const crt = join(cdir, 'config', 'live', certbotName, 'fullchain.pem');
    ct.equal(r.code, 0, 'certbot exited 0');
    ct.ok(existsSync(crt), `certificate written: ${crt}`);
    if (existsSync(crt)) {
      ct.match(sanOf(crt), `DNS:${certbotName}`, 'for the apex');
      ct.match(sanOf(crt), `DNS:*.${certbotName}`, 'and the wildcard');
    }
    if (r.code !== 0 || !existsSync(crt)) ct.comment(`certbot:\n${r.out}\npebble:\n${pebble.output()}`);
    ct.ok(r.seen !== null, 'the secondary served the challenge TXT while certbot ran');
    ct.comment(
      `certbot: TXT at the secondary ${delay(primary.output(), CERTBOT_KEY, r.seen)} s after the update`,
    );
    await assertCleaned(ct, primary.port, secondary.port, `_acme-challenge.${certbotName}`);
    ct.match(
      primary.output(),
      new RegExp(`update zone=${ZONE}\\. key=${CERTBOT_KEY}\\. .*result=NOERROR added=1`),
    );
  });

  await tt.test(
    "acme.sh's dns_nsupdate: nsupdate -k with the key file from popdns tsig-keygen",
    async (nt) => {
      if (!needTool(nt, 'nsupdate', 'bind9-dnsutils')) return;
      const keyFile = join(dir, 'acmesh.key');
      writeFileSync(keyFile, acmeshKey.bind, { mode: 0o600 });
      const challenge = `_acme-challenge.mail.${ZONE}`;
      // What dns_nsupdate_add / dns_nsupdate_rm send (NSUPDATE_SERVER, _SERVER_PORT, _KEY, _ZONE set).
      const nsupdate = (line: string): { code: number | null; out: string } => {
        const input = [`server 127.0.0.1 ${primary.port}`, `zone ${ZONE}.`, line, 'send', ''].join('\n');
        const r = spawnSync('nsupdate', ['-k', keyFile], { input, encoding: 'utf8', timeout: 20_000 });
        return { code: r.status, out: `${r.stdout}${r.stderr}` };
      };
      const watch = watchSecondary(secondary.port, challenge);
      let r = nsupdate(`update add ${challenge}. 60 in txt "acme-sh-token"`);
      nt.equal(r.code, 0, `add: ${r.out}`);
      const seen = await watch.stop(10_000);
      nt.same(await txtAt(secondary.port, challenge), ['acme-sh-token'], 'TXT served by the secondary');
      nt.comment(
        `nsupdate: TXT at the secondary ${delay(primary.output(), ACMESH_KEY, seen)} s after the update`,
      );
      r = nsupdate(`update delete ${challenge}. txt`);
      nt.equal(r.code, 0, `delete: ${r.out}`);
      await assertCleaned(nt, primary.port, secondary.port, challenge);
    },
  );
});
