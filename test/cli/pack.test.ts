/** The npm package: what it ships, and that it installs into a fresh prefix and runs. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

t.test('npm pack, installed into a fresh prefix, runs popdns --version', async (t) => {
  const dir = tmpDir(t);
  const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], {
    encoding: 'utf8',
  });
  t.equal(pack.status, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as { filename: string; files: { path: string }[] }[];
  const files = info!.files.map((f) => f.path);
  for (const want of [
    'dist/cli.js',
    'docs/zone-format.md',
    'deploy/popdns.yaml',
    'deploy/grafana/popdns.json',
  ])
    t.ok(files.includes(want), `the package has ${want}`);
  const prefix = join(dir, 'prefix');
  const install = await new Promise<{ code: number | null; err: string }>((resolve) => {
    const c = spawn(
      'npm',
      [
        'install',
        '-g',
        '--prefix',
        prefix,
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        join(dir, info!.filename),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => resolve({ code, err }));
  });
  t.equal(install.code, 0, install.err);
  const v = spawnSync(join(prefix, 'bin', 'popdns'), ['--version'], { encoding: 'utf8' });
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
  t.equal(v.stdout.trim(), pkg.version, 'the installed popdns runs');
});
