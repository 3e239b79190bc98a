/** What a new operator hit first: default port, help texts, exit codes, signals, packaging. */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { probe } from '../../src/health/probe.js';
import { DEFAULT_LISTEN } from '../../src/server/config.js';
import { parseListen } from '../../src/server/listen.js';
import { TYPE } from '../../src/wire/constants.js';
import { freePort, startProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const ZONE =
  '$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hm 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.1\n';
const popdns = (...args: string[]) =>
  spawnSync(process.execPath, ['dist/cli.js', ...args], { encoding: 'utf8', timeout: 30000 });

t.test('the default port is one no common daemon holds', (t) => {
  // 53: every resolver stub; 5353: mDNS (avahi, systemd-resolved); 5355: LLMNR (systemd-resolved);
  // 5053: cloudflared proxy-dns; 8053: pebble-challtestsrv; 5335: the Pi-hole unbound guide.
  const taken = new Set([53, 5353, 5355, 5053, 8053, 5335]);
  let services = '';
  try {
    services = readFileSync('/etc/services', 'utf8');
  } catch {
    // not on every system
  }
  for (const l of DEFAULT_LISTEN) {
    const { port } = parseListen(l);
    t.notOk(taken.has(port), `${l}: not a port a common daemon uses`);
    t.notMatch(services, new RegExp(`\\s${port}/(udp|tcp)`), `${l}: not in /etc/services`);
  }
  t.end();
});

t.test('help texts and exit codes', (t) => {
  const serve = popdns('serve', '--help');
  t.equal(serve.status, 0);
  for (const w of ['SIGHUP', 'SIGTERM', 'SIGINT', 'drain', 'Exit status', '  2  bad configuration'])
    t.match(serve.stdout, w, `serve --help mentions ${w}`);
  const check = popdns('check', '--help');
  t.notMatch(check.stdout, '(default: [])');
  t.match(check.stdout, '(default: ./zones)');
  t.equal(popdns('serve', '--workers', '0').status, 2, 'a bad flag value: exit 2');
  t.equal(popdns('frobnicate').status, 2, 'an unknown command: exit 2');
  t.end();
});

t.test('check -q prints problems only; convert and keygen refuse what would break', (t) => {
  const dir = tmpDir(t);
  writeFileSync(join(dir, 'example.test.zone'), ZONE);
  const quiet = popdns('check', '-q', dir);
  t.equal(quiet.status, 0);
  t.equal(quiet.stdout + quiet.stderr, '', 'nothing to say about a good zone');
  const out = join(dir, 'x.yaml');
  const conv = popdns('convert', join(dir, 'example.test.zone'), out, '--to', 'zone');
  t.equal(conv.status, 2);
  t.match(conv.stderr, /named like a YAML file.*\[POPDNS_E_USAGE\]/);
  t.notOk(existsSync(out), 'no master-file text in a .yaml file');
  t.equal(popdns('convert', join(dir, 'example.test.zone'), '-', '--to', 'zone').status, 0, 'stdout is fine');
  const keys = join(dir, 'keys');
  const kg = popdns('keygen', 'bad zone', '--keys', keys);
  t.equal(kg.status, 2);
  t.match(kg.stderr, /"bad zone" is not a zone name/);
  t.ok(!existsSync(keys) || readdirSync(keys).length === 0, 'no key files made');
  t.end();
});

t.test('a second SIGTERM, or SIGINT, stops at once', async (t) => {
  const dir = tmpDir(t);
  mkdirSync(join(dir, 'z'));
  writeFileSync(join(dir, 'z', 'example.test.zone'), ZONE);
  const cfg = join(dir, 'popdns.yaml');
  const port = await freePort();
  // A drain far longer than the test waits: exiting at all proves it did not drain.
  writeFileSync(
    cfg,
    `zones: ${join(dir, 'z')}\nlisten: [127.0.0.1:${port}]\nmetrics: false\ncontrol: false\ndrain: 600s\n`,
  );
  for (const [what, signals, workers] of [
    ['SIGTERM twice', ['SIGTERM', 'SIGTERM'], '2'],
    ['SIGINT', ['SIGINT'], '1'],
  ] as const) {
    {
      const p = await startProcess(
        t,
        process.execPath,
        ['dist/cli.js', 'serve', '--config', cfg, '--workers', workers],
        (o) => o.includes('ready:'),
        60000,
      );
      const exited = new Promise<number | null>((resolve) => p.child.once('exit', (c) => resolve(c)));
      for (const s of signals) {
        p.child.kill(s);
        await new Promise((r) => setTimeout(r, 200));
      }
      t.equal(await exited, 0, `${what}, --workers ${workers}: exit 0 without waiting for the drain`);
      t.match(p.output(), 'stopping now, no drain');
    }
  }
});

t.test('the health probe says "connection refused" for a closed UDP port', async (t) => {
  const port = await freePort();
  const r = await probe({ host: '127.0.0.1', port, family: 4 }, 'udp', 'example.test.', TYPE.SOA, 5000);
  t.equal(r.ok, false);
  t.match(r.detail, /^connection refused/);
});

t.test('popdns help COMMAND: the usage and the detail from docs/cli.md, for every command', (t) => {
  const list = popdns('--help').stdout;
  const commands = [...list.matchAll(/^ {2}([a-z-]+) /gm)].map((m) => m[1]!).filter((c) => c !== 'help');
  t.ok(commands.length >= 8, `commands: ${commands.join(' ')}`);
  for (const c of commands) {
    const h = popdns('help', c);
    t.equal(h.status, 0, `help ${c}`);
    t.match(h.stdout, `Usage: popdns ${c}`, `help ${c}: the usage`);
    t.match(h.stdout, 'Exit status', `help ${c}: the detail, with exit codes`);
  }
  t.match(popdns('help', 'serve').stdout, 'a second SIGTERM exits at once');
  t.equal(popdns('help', 'nope').status, 2);
  t.end();
});
