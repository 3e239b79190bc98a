/**
 * Updates of a zone popdns signs, with `--workers 2`: the writer re-signs what the update touched and
 * every other worker, catching up from the (unsigned) journal, re-signs the same way with its own
 * signer — so whichever worker answers, the new record comes with a signature a validator accepts
 * (RFC 4035 §5) and the removed name is denied with a valid NSEC (delv, several runs: fresh sockets
 * land on both workers).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { generateKey, writeKeyFiles } from '../../src/dnssec/keys.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { rdataToText } from '../../src/wire/rdata.js';
import { freePort, needTool, startProcess, tmpDir } from '../helpers/peers.js';
import { delvWith } from '../helpers/validators.js';
import { spawnSync } from '../helpers/spawn.js';

const OPS = Buffer.from('ops-key-for-popdns-workers-signed').toString('base64');

t.test('signed zone, --workers 2: every worker serves the update validly signed', async (t) => {
  if (!needTool(t, 'nsupdate', 'bind9-dnsutils') || !needTool(t, 'delv', 'bind9-dnsutils')) return;
  const dir = tmpDir(t, 'popdns-workers-signed-');
  mkdirSync(join(dir, 'zones'));
  mkdirSync(join(dir, 'keys'));
  writeFileSync(
    join(dir, 'zones', 'example.com.zone'),
    `$ORIGIN example.com.
$TTL 300
@ SOA ns1 hostmaster 7 3600 600 86400 300
@ NS ns1
ns1 A 192.0.2.1
gone A 192.0.2.99
`,
  );
  const key = generateKey(nameFromText('example.com.'), 13, 'csk');
  writeKeyFiles(join(dir, 'keys'), key);
  const port = await freePort();
  const config = join(dir, 'popdns.yaml');
  writeFileSync(
    config,
    `zones: ${join(dir, 'zones')}
keys: ${join(dir, 'keys')}
listen: ["127.0.0.1:${port}"]
metrics: false
control: false
data-dir: ${join(dir, 'data')}
tsig-keys:
  ops.example.com: { algorithm: hmac-sha256, secret: "${OPS}" }
updates:
  example.com:
    - { key: ops.example.com }
`,
  );
  await startProcess(
    t,
    process.execPath,
    ['dist/cli.js', 'serve', '--config', config, '--workers', '2'],
    (o) => o.includes('ready:'),
  );
  const nsupdate = spawnSync('nsupdate', ['-y', `hmac-sha256:ops.example.com:${OPS}`], {
    input: [
      `server 127.0.0.1 ${port}`,
      'zone example.com',
      'update add fresh.example.com. 300 TXT "signed by every worker"',
      'update delete gone.example.com. A',
      'send',
      '',
    ].join('\n'),
    encoding: 'utf8',
    timeout: 30000,
  });
  t.equal(nsupdate.status, 0, `nsupdate: ${nsupdate.stdout}${nsupdate.stderr}`);
  mkdirSync(join(dir, 'delv'));
  const delv = delvWith(join(dir, 'delv'), port, 'example.com.', rdataToText(TYPE.DNSKEY, key.dnskey));
  for (let i = 0; i < 4; i++) {
    const txt = await delv('fresh.example.com', 'TXT');
    t.match(txt, /; fully validated[\s\S]*"signed by every worker"/, `run ${i + 1}: the new TXT validates`);
    const nx = await delv('gone.example.com', 'A');
    t.match(
      nx,
      /resolution failed: ncache nxdomain|; negative response, fully validated/,
      `run ${i + 1}: the removed name is a validated NXDOMAIN`,
    );
  }
});
