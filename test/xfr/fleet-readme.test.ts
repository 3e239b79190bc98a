/**
 * The README's "Running a fleet" section, walked through on loopback: its config blocks (found by their
 * `<!-- fleet:NAME -->` markers) are used as written, with only the addresses, ports and paths filled in
 * for this machine and the sample key replaced by one from `popdns tsig-keygen`. A popdns hidden primary
 * (zone files + the catalog), two popdns PoPs (a catalog and a `secondaries` entry, no zone files): the
 * PoPs load everything from the primary; a change at the primary (file edited, serial raised, SIGHUP)
 * reaches both by NOTIFY + IXFR; a member added to the catalog is served by both.
 */
import { createSocket } from 'node:dgram';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import t from 'tap';
import { buildQuery, udpExchange } from '../helpers/dns.js';
import { normalizeWire } from '../helpers/knot.js';
import { plainEnv, startProcess, tmpDir } from '../helpers/peers.js';
import { serialOf, smallZone, waitUntil } from '../helpers/secondary.js';
import { spawnSync } from '../helpers/spawn.js';

const readme = readFileSync('README.md', 'utf8');
const start = readme.indexOf('\n## Running a fleet\n');
const section = start < 0 ? '' : readme.slice(start, readme.indexOf('\n## ', start + 1));

/** The fenced block right after `<!-- fleet:NAME -->` in the section, without its indentation. */
function block(name: string): string {
  const m = new RegExp(`<!-- fleet:${name} -->\\n( *)\`\`\`[a-z]*\\n([\\s\\S]*?)\\n *\`\`\``).exec(section);
  if (!m) return '';
  const indent = m[1]!.length;
  return `${m[2]!
    .split('\n')
    .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
    .join('\n')}\n`;
}

/** Whether `port` is free on 127.0.0.1 for both TCP and UDP. */
async function isFree(port: number): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
  if (!tcp) return false;
  return new Promise<boolean>((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => resolve(false));
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** `n` free ports from this test's range (24600-24999), from a per-process offset. */
async function ports(n: number): Promise<number[]> {
  const out: number[] = [];
  const base = 24600 + ((process.pid * 7) % 400);
  for (let i = 0; i < 400 && out.length < n; i++) {
    const p = 24600 + ((base - 24600 + i) % 400);
    if (await isFree(p)) out.push(p);
  }
  if (out.length < n) throw new Error('no free ports in 24600-24999');
  return out;
}

t.test('README "Running a fleet", walked through', async (t) => {
  const primaryYaml = block('primary');
  const catalogText = block('catalog');
  const popYaml = block('pop');
  const memberLine = block('catalog-member').trim();
  t.ok(section, 'the README has a "Running a fleet" section');
  t.ok(primaryYaml && catalogText && popYaml && memberLine, 'the section has the four marked blocks');
  if (!primaryYaml || !catalogText || !popYaml || !memberLine) return;

  // 1. A key, from popdns tsig-keygen, replacing the sample one in every block.
  const keyName = /^ *([\w.-]+): \{ algorithm:/m.exec(primaryYaml)?.[1] ?? '';
  t.equal(keyName, 'xfr.example.net', 'the blocks use the key the section tells to generate');
  const gen = spawnSync(process.execPath, ['dist/cli.js', 'tsig-keygen', keyName], {
    encoding: 'utf8',
    env: plainEnv(),
    timeout: 30_000,
  });
  t.equal(gen.status, 0, 'popdns tsig-keygen');
  const keyLine = new RegExp(`^ *${keyName.replace(/\./g, '\\.')}: \\{.*\\}$`, 'm').exec(gen.stdout)?.[0];
  t.ok(keyLine, 'tsig-keygen printed the YAML entry');
  if (!keyLine) return;

  const dir = tmpDir(t, 'popdns-fleet-');
  const [pPort, aPort, bPort, pMetrics, aMetrics, bMetrics] = await ports(6);
  const nodes = {
    primary: { port: pPort!, metrics: pMetrics!, dir: join(dir, 'primary') },
    popa: { port: aPort!, metrics: aMetrics!, dir: join(dir, 'popa') },
    popb: { port: bPort!, metrics: bMetrics!, dir: join(dir, 'popb') },
  };
  // Only what the README leaves to the site: addresses, ports, paths; plus a metrics port, an identity,
  // one worker and no control socket so three servers share the machine.
  const fill = (yaml: string, node: keyof typeof nodes): string => {
    const n = nodes[node];
    const text = yaml
      .replace(/^ *[\w.-]+: \{ algorithm:.*$/m, keyLine)
      .replaceAll('/etc/popdns/zones', join(n.dir, 'zones'))
      .replaceAll('/var/lib/popdns', join(n.dir, 'data'))
      .replaceAll('10.53.0.0/16', '127.0.0.0/8')
      .replaceAll('10.53.0.1:53', `127.0.0.1:${pPort}`)
      .replaceAll('10.53.1.1:53', `127.0.0.1:${aPort}`)
      .replaceAll('10.53.2.1:53', `127.0.0.1:${bPort}`)
      .replace(/^listen:.*$/m, '');
    t.notMatch(
      text.replace(/^ *#.*$/gm, ''),
      /10\.53\.|\/etc\/|\/var\//,
      `${node}: every README address and path filled in`,
    );
    const conf = [
      text,
      `listen: ["127.0.0.1:${n.port}"]`,
      `metrics: 127.0.0.1:${n.metrics}`,
      `identity: ${node}`,
      'workers: 1',
      'drain: 0s',
      'control: false',
      '',
    ].join('\n');
    mkdirSync(n.dir, { recursive: true });
    writeFileSync(join(n.dir, 'popdns.yaml'), conf);
    return join(n.dir, 'popdns.yaml');
  };

  // 2-3. The hidden primary: its zone files (the catalog as the README writes it, a small zone for each
  // zone the PoPs follow) and its config.
  const zones = join(nodes.primary.dir, 'zones');
  mkdirSync(zones, { recursive: true });
  const catalogFile = /^; \S*\/(\S+\.zone)$/m.exec(catalogText)?.[1] ?? 'catalog.zone';
  const catalogName = /^\$ORIGIN (\S+)\.$/m.exec(catalogText)?.[1] ?? '';
  const members = [...catalogText.matchAll(/PTR\s+(\S+)\.$/gm)].map((m) => m[1]!);
  const followed = [...popYaml.matchAll(/- \{ zone: ([\w.-]+),/g)].map((m) => m[1]!);
  const plain = followed.filter((z) => z !== catalogName);
  t.ok(catalogName && members.length > 0 && plain.length > 0, 'a catalog with members and a plain secondary');
  writeFileSync(join(zones, catalogFile), catalogText);
  for (const z of [...members, ...plain]) writeFileSync(join(zones, `${z}.zone`), smallZone(z, 1));
  const serve = (name: keyof typeof nodes, yaml: string) =>
    startProcess(
      t,
      process.execPath,
      ['dist/cli.js', 'serve', '--config', fill(yaml, name)],
      (o) => o.includes('ready:'),
      30_000,
    );
  const primary = await serve('primary', primaryYaml);

  // 4. Two PoPs with the README's PoP config, started together (each node start is slow on a loaded machine).
  const [popa, popb] = await Promise.all([serve('popa', popYaml), serve('popb', popYaml)]);
  const pops = [
    { name: 'popa', port: aPort!, proc: popa },
    { name: 'popb', port: bPort!, proc: popb },
  ];
  const everywhere = (zone: string, serial: number, ms: number) =>
    waitUntil(async () => {
      for (const p of pops) if ((await serialOf(p.port, zone)) !== serial) return false;
      return true;
    }, ms);
  for (const z of [...members, ...plain])
    t.ok(await everywhere(z, 1, 30_000), `both PoPs serve ${z} (serial 1) from the primary`);

  // 5. A change at the primary: file edited, serial raised, reload.
  const changed = plain[0]!;
  writeFileSync(
    join(zones, `${changed}.zone`),
    smallZone(changed, 2).replace('www A 192.0.2.1', 'www A 192.0.2.2'),
  );
  primary.child.kill('SIGHUP');
  t.ok(await everywhere(changed, 2, 15_000), `both PoPs serve ${changed} serial 2 after the change`);
  for (const p of pops) {
    t.match(
      p.proc.output(),
      `xfr in zone ${changed}. from 127.0.0.1:${pPort} IXFR serial 1 -> 2`,
      `${p.name}: by IXFR`,
    );
    const a = await udpExchange(p.port, buildQuery(`www.${changed}`, 'A'));
    t.same(
      normalizeWire(a!).answer.map((s) => s.rdata),
      [['"192.0.2.2"']], // dns-packet's decoding, JSON-encoded
      `${p.name}: the new record`,
    );
  }

  // 6. A new zone: its file, its member line in the catalog, the catalog's serial raised, reload.
  const added = /PTR\s+(\S+)\.$/.exec(memberLine)?.[1] ?? '';
  t.ok(added && !members.includes(added), 'the member line adds a new zone');
  t.equal(await serialOf(aPort!, added), 'REFUSED', `${added} not served before it is added`);
  writeFileSync(join(zones, `${added}.zone`), smallZone(added, 7));
  const bumped = catalogText.replace(
    /(SOA\s+\S+\s+\S+\s+)(\d+)/,
    (_m, pre: string, n: string) => `${pre}${Number(n) + 1}`,
  );
  t.not(bumped, catalogText, 'catalog serial raised');
  writeFileSync(join(zones, catalogFile), `${bumped}${memberLine}\n`);
  primary.child.kill('SIGHUP');
  t.ok(await everywhere(added, 7, 20_000), `both PoPs serve ${added}, added to the catalog`);
});
