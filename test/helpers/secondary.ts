/**
 * Helpers for secondary-side tests: a popdns secondary started from a config, a TSIG secret, waiting
 * for a serial, and a Knot primary with a control socket for changes (knotc zone-begin/set/commit).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import packet from 'dns-packet';
import type { Test } from 'tap';
import { buildQuery, udpExchange } from './dns.js';
import { freePort, type Proc, startProcess, tmpDir } from './peers.js';
import { spawnSync } from './spawn.js';

export const KEY_NAME = 'xfr';

/** A fresh hmac-sha256 secret, base64. */
export function newSecret(): string {
  return randomBytes(32).toString('base64');
}

export interface Secondary extends Proc {
  port: number;
  metricsPort: number;
  dir: string;
  dataDir: string;
  config: string;
}

/** Starts `popdns serve` with `extraYaml` (secondaries:, catalogs:, tsig-keys: …) and no zone files. */
export async function startSecondary(
  t: Test,
  extraYaml: string,
  o: { port?: number; dir?: string; workers?: number; wait?: (out: string) => boolean } = {},
): Promise<Secondary> {
  const dir = o.dir ?? tmpDir(t, 'popdns-sec-');
  const port = o.port ?? (await freePort());
  const metricsPort = await freePort();
  const dataDir = join(dir, 'data');
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    [
      `listen: ["127.0.0.1:${port}"]`,
      `metrics: 127.0.0.1:${metricsPort}`,
      `zones: ${join(dir, 'zones')}`,
      `data-dir: ${dataDir}`,
      `workers: ${o.workers ?? 1}`,
      'drain: 0s',
      'identity: secondary',
      extraYaml,
    ].join('\n'),
  );
  const p = await startProcess(
    t,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', config],
    (out) => (o.wait ?? ((x: string) => x.includes('ready:')))(out),
    // Workers are processes of their own: on a loaded CI machine they take a while to start.
    (o.workers ?? 1) > 1 ? 60_000 : 30_000,
  );
  return { ...p, port, metricsPort, dir, dataDir, config };
}

/** The SOA serial a server answers for `zone` over UDP, or the rcode text when it is not NOERROR. */
export async function serialOf(port: number, zone: string): Promise<number | string | null> {
  const raw = await udpExchange(port, buildQuery(zone, 'SOA'), 1000);
  if (!raw) return null;
  const m = packet.decode(raw) as packet.Packet & { rcode?: string };
  if (m.rcode !== 'NOERROR') return m.rcode ?? 'error';
  const soa = m.answers?.find((a) => a.type === 'SOA');
  return soa ? (soa.data as { serial: number }).serial : null;
}

/** Polls `check` every 100 ms until it returns true or `ms` pass; returns whether it did. */
export async function waitUntil(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return check();
}

export async function httpText(port: number, path: string): Promise<{ status: number; body: string }> {
  const r = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: r.status, body: await r.text() };
}

export interface KnotPrimary {
  port: number;
  dir: string;
  log(): string;
  knotc(...args: string[]): string;
  /** Replaces/adds one record by a control transaction: a new serial, journalled, NOTIFY sent. */
  set(zone: string, owner: string, ttl: number, type: string, rdata: string): void;
}

/**
 * Knot as a hidden primary with key `xfr` and NOTIFY to `notifyPort`; `zones` maps a zone name to its
 * file text. With `catalog`, Knot generates that RFC 9432 catalog with `members` in it.
 */
export async function startKnotPrimary(
  t: Test,
  secret: string,
  notifyPort: number,
  zones: Record<string, string>,
  o: { catalog?: { name: string; members: string[] }; noNotify?: boolean } = {},
): Promise<KnotPrimary> {
  const dir = tmpDir(t, 'popdns-knotp-');
  mkdirSync(join(dir, 'db'));
  mkdirSync(join(dir, 'zones'));
  const port = await freePort();
  const conf = [
    'server:',
    `    listen: 127.0.0.1@${port}`,
    `    rundir: ${dir}`,
    'database:',
    `    storage: ${join(dir, 'db')}`,
    'control:',
    `    listen: ${join(dir, 'knot.sock')}`,
    'log:',
    `  - target: ${join(dir, 'knot.log')}`,
    '    any: info',
    'key:',
    `  - id: ${KEY_NAME}`,
    '    algorithm: hmac-sha256',
    `    secret: ${secret}`,
    'remote:',
    '  - id: sec',
    `    address: 127.0.0.1@${notifyPort}`,
    `    key: ${KEY_NAME}`,
    'acl:',
    '  - id: keyed',
    '    address: 127.0.0.0/8',
    `    key: ${KEY_NAME}`,
    '    action: [transfer, notify]',
    'template:',
    '  - id: default',
    `    storage: ${join(dir, 'zones')}`,
    '    zonefile-sync: -1',
    '    zonefile-load: whole',
    '    journal-content: changes',
    '    semantic-checks: off',
    '    acl: keyed',
    ...(o.noNotify ? [] : ['    notify: sec']),
    'zone:',
  ];
  for (const [zone, text] of Object.entries(zones)) {
    writeFileSync(join(dir, 'zones', `${zone}.zone`), text);
    conf.push(`  - domain: ${zone}`);
    if (o.catalog?.members.includes(zone))
      conf.push('    catalog-role: member', `    catalog-zone: ${o.catalog.name}`);
  }
  if (o.catalog) conf.push(`  - domain: ${o.catalog.name}`, '    catalog-role: generate');
  writeFileSync(join(dir, 'knot.conf'), `${conf.join('\n')}\n`);
  const sock = join(dir, 'knot.sock');
  const knotc = (...args: string[]): string => {
    const r = spawnSync('knotc', ['-s', sock, ...args], { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`;
  };
  await startProcess(t, 'knotd', ['-c', join(dir, 'knot.conf')], () => {
    const st = knotc('zone-status');
    const all = [...Object.keys(zones), ...(o.catalog ? [o.catalog.name] : [])];
    return all.every((z) => st.includes(`[${z}.] role: master | serial:`));
  });
  const log = (): string => {
    try {
      return spawnSync('cat', [join(dir, 'knot.log')], { encoding: 'utf8' }).stdout;
    } catch {
      return '';
    }
  };
  return {
    port,
    dir,
    log,
    knotc,
    set(zone, owner, ttl, type, rdata) {
      const out = [
        knotc('zone-begin', zone),
        knotc('zone-unset', zone, owner, type),
        knotc('zone-set', zone, owner, String(ttl), type, rdata),
        knotc('zone-commit', zone),
      ].join('');
      if (!out.includes('OK')) throw new Error(`knotc change failed: ${out}`);
    },
  };
}

/** A small zone text with serial `serial`. */
export function smallZone(zone: string, serial: number, extra: string[] = []): string {
  return [
    `$ORIGIN ${zone}.`,
    '$TTL 300',
    `@ SOA ns1 hostmaster ${serial} 3600 600 86400 300`,
    '@ NS ns1',
    'ns1 A 192.0.2.53',
    'www A 192.0.2.1',
    'mail MX 10 www',
    'txt TXT "hello world"',
    ...extra,
    '',
  ].join('\n');
}
