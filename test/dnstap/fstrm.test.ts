/**
 * dnstap end to end with the Debian tools: popdns (two workers, each its own Frame Streams connection)
 * writes to `fstrm_capture` (fstrm-bin), which does the bidirectional handshake; `dnstap-ldns -y`
 * (dnstap-ldns) decodes the file, and every AUTH_QUERY/AUTH_RESPONSE must match what dig sent and got:
 * id, qname, qtype, rcode, transport, and the client's address and port (dig -b pins the port).
 * Then: popdns (one worker: workers log "connected" only before ready) started before its collector
 * keeps answering, and connects once the collector appears.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { parseAllDocuments } from 'yaml';
import { freePort, needTool, type Proc, startProcess, stopProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

interface Dig {
  id: number;
  status: string;
  srcPort: number;
  tcp: boolean;
  name: string;
  type: string;
}

function dig(port: number, srcPort: number, name: string, type: string, tcp: boolean): Dig {
  const args = [
    '@127.0.0.1',
    '-p',
    String(port),
    '-b',
    `127.0.0.1#${srcPort}`,
    name,
    type,
    '+tries=1',
    '+time=3',
  ];
  if (tcp) args.push('+tcp');
  const r = spawnSync('dig', args, { encoding: 'utf8' });
  const m = /opcode: QUERY, status: (\w+), id: (\d+)/.exec(r.stdout);
  if (!m) throw new Error(`dig ${name} ${type} failed:\n${r.stdout}${r.stderr}`);
  return { id: Number(m[2]), status: m[1]!, srcPort, tcp, name, type };
}

interface TapMsg {
  type: string;
  socket_protocol?: string;
  socket_family?: string;
  query_address?: string;
  query_port?: number;
  response_port?: number;
  query_message?: string;
  response_message?: string;
}

function decode(file: string): TapMsg[] {
  const r = spawnSync('dnstap-ldns', ['-y', '-r', file], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`dnstap-ldns: ${r.stderr}`);
  return parseAllDocuments(r.stdout, { customTags: ['timestamp'] })
    .map((d) => d.toJS() as { message?: TapMsg } | null)
    .flatMap((d) => (d?.message ? [d.message] : []));
}

/** id, rcode and question of an ldns-printed message. */
function header(text: string): { id: number; rcode: string; qname: string; qtype: string } {
  const h = /rcode: (\w+), id: (\d+)/.exec(text);
  const q = /;; QUESTION SECTION:\n;(\S+)\s+IN\s+(\S+)/.exec(text);
  return { id: Number(h?.[2]), rcode: h?.[1] ?? '', qname: q?.[1] ?? '', qtype: q?.[2] ?? '' };
}

async function popdns(t: Test, dir: string, sock: string, port: number, workers: number): Promise<Proc> {
  const metrics = await freePort();
  const cfg = join(dir, 'popdns.yaml');
  writeFileSync(
    cfg,
    [
      'zones: zones',
      `listen: ["127.0.0.1:${port}"]`,
      `metrics: 127.0.0.1:${metrics}`,
      `workers: ${workers}`,
      'drain: 0s',
      `data-dir: ${join(dir, 'data')}`,
      `dnstap: { socket: ${sock}, messages: [auth-query, auth-response], sample: 1 }`,
      '',
    ].join('\n'),
  );
  return startProcess(t, process.execPath, ['dist/cli.js', 'serve', '--config', cfg], (o) =>
    o.includes('ready:'),
  );
}

async function waitFor(ok: () => boolean, ms = 15000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  return ok();
}

t.test(
  'fstrm_capture receives and dnstap-ldns decodes what dig sent and got (UDP and TCP, two workers)',
  async (tt) => {
    if (!needTool(tt, 'fstrm_capture', 'fstrm-bin') || !needTool(tt, 'dnstap-ldns', 'dnstap-ldns')) return;
    if (!needTool(tt, 'dig', 'bind9-dnsutils')) return;
    const dir = tmpDir(tt, 'popdns-dnstap-');
    const sock = join(dir, 'tap.sock');
    const file = join(dir, 'tap.fstrm');
    const cap = await startProcess(
      tt,
      'fstrm_capture',
      ['-ddd', '-t', 'protobuf:dnstap.Dnstap', '-u', sock, '-w', file],
      (o) => o.includes('opened output file'),
    );
    const port = await freePort();
    const srv = await popdns(tt, dir, sock, port, 2);
    tt.ok(
      await waitFor(() => (cap.output().match(/accepted new connection/g) ?? []).length === 2),
      'each worker has its own connection',
    );
    const src = await freePort();
    const sent = [
      dig(port, src, 'www.example.com', 'A', false),
      dig(port, src, 'nope.example.com', 'AAAA', false),
      dig(port, src, 'example.net', 'SOA', true),
      dig(port, src, 'example.org', 'A', true),
    ];
    tt.same(
      sent.map((d) => d.status),
      ['NOERROR', 'NXDOMAIN', 'NOERROR', 'REFUSED'],
      'dig got the expected answers',
    );
    await stopProcess(srv.child);
    await stopProcess(cap.child);
    const msgs = decode(file);
    tt.equal(msgs.length, 2 * sent.length, 'one AQ and one AR per query');
    for (const d of sent) {
      const what = `${d.tcp ? 'TCP' : 'UDP'} ${d.name} ${d.type}`;
      const aq = msgs.find((m) => m.type === 'AUTH_QUERY' && header(m.query_message ?? '').id === d.id);
      const ar = msgs.find((m) => m.type === 'AUTH_RESPONSE' && header(m.response_message ?? '').id === d.id);
      if (!aq || !ar) {
        tt.fail(`${what}: AQ/AR with id ${d.id} missing`);
        continue;
      }
      for (const m of [aq, ar]) {
        tt.match(
          m,
          {
            socket_family: 'INET',
            socket_protocol: d.tcp ? 'TCP' : 'UDP',
            query_address: '127.0.0.1',
            query_port: d.srcPort,
            response_port: port,
          },
          `${what} ${m.type}: transport and addresses`,
        );
      }
      tt.match(
        header(aq.query_message!),
        { rcode: 'NOERROR', qname: `${d.name}.`, qtype: d.type },
        `${what}: AQ`,
      );
      tt.match(
        header(ar.response_message!),
        { rcode: d.status, qname: `${d.name}.`, qtype: d.type },
        `${what}: AR`,
      );
      tt.match(ar.response_message!, /flags: qr aa|flags: qr/, `${what}: AR is a response`);
    }
  },
);

t.test('no collector: popdns keeps answering, then connects when one appears', async (tt) => {
  if (!needTool(tt, 'fstrm_capture', 'fstrm-bin') || !needTool(tt, 'dnstap-ldns', 'dnstap-ldns')) return;
  if (!needTool(tt, 'dig', 'bind9-dnsutils')) return;
  const dir = tmpDir(tt, 'popdns-dnstap-');
  const sock = join(dir, 'tap.sock');
  const file = join(dir, 'tap.fstrm');
  const port = await freePort();
  const srv = await popdns(tt, dir, sock, port, 1);
  const src = await freePort();
  tt.equal(dig(port, src, 'www.example.com', 'A', false).status, 'NOERROR', 'answers without a collector');
  tt.equal(dig(port, src, 'www.example.com', 'A', true).status, 'NOERROR', 'TCP too');
  tt.match(srv.output(), /warning: dnstap: collector .*tap\.sock.*POPDNS_W_DNSTAP/);
  const cap = await startProcess(
    tt,
    'fstrm_capture',
    ['-t', 'protobuf:dnstap.Dnstap', '-u', sock, '-w', file],
    (o) => o.includes('opened output file'),
  );
  tt.ok(
    await waitFor(() => (srv.output().match(/dnstap: connected to/g) ?? []).length === 1, 20000),
    'connects (back-off up to 5 s)',
  );
  const d = dig(port, src, 'example.net', 'NS', false);
  await stopProcess(srv.child);
  await stopProcess(cap.child);
  const msgs = decode(file);
  tt.ok(
    msgs.some((m) => m.type === 'AUTH_RESPONSE' && header(m.response_message ?? '').id === d.id),
    'the query after the reconnect is in the capture',
  );
});

t.test("the same queries through Knot's mod-dnstap: the same messages and fields", async (tt) => {
  if (!needTool(tt, 'fstrm_capture', 'fstrm-bin') || !needTool(tt, 'dnstap-ldns', 'dnstap-ldns')) return;
  if (!needTool(tt, 'dig', 'bind9-dnsutils') || !needTool(tt, 'knotd', 'knot knot-module-dnstap')) return;
  const dir = tmpDir(tt, 'popdns-dnstap-');
  const knotPort = await freePort();
  writeFileSync(
    join(dir, 'knot.conf'),
    [
      'server:',
      `  listen: 127.0.0.1@${knotPort}`,
      `  rundir: ${dir}`,
      'database:',
      `  storage: ${dir}`,
      'mod-dnstap:',
      '  - id: t',
      `    sink: "unix:${join(dir, 'knot.sock')}"`,
      '    log-queries: on',
      '    log-responses: on',
      'template:',
      '  - id: default',
      `    storage: ${process.cwd()}/zones`,
      '    global-module: mod-dnstap/t',
      '    zonefile-sync: -1',
      '    journal-content: none',
      'zone:',
      '  - domain: example.net',
      '    file: example.net.zone',
      '',
    ].join('\n'),
  );
  const caps: Proc[] = [];
  for (const who of ['knot', 'popdns'])
    caps.push(
      await startProcess(
        tt,
        'fstrm_capture',
        ['-t', 'protobuf:dnstap.Dnstap', '-u', join(dir, `${who}.sock`), '-w', join(dir, `${who}.fstrm`)],
        (o) => o.includes('opened output file'),
      ),
    );
  const knot = await startProcess(tt, 'knotd', ['-c', join(dir, 'knot.conf')], () => {
    try {
      return dig(knotPort, 0, 'example.net', 'SOA', true).status === 'NOERROR';
    } catch {
      return false;
    }
  });
  const port = await freePort();
  const srv = await popdns(tt, dir, join(dir, 'popdns.sock'), port, 1);
  tt.ok(await waitFor(() => srv.output().includes('dnstap: connected')));
  const asked: Record<string, Dig[]> = { knot: [], popdns: [] };
  for (const [who, p] of [
    ['knot', knotPort],
    ['popdns', port],
  ] as const) {
    const src = await freePort();
    asked[who]!.push(dig(p, src, 'example.net', 'SOA', false), dig(p, src, 'nope.example.net', 'A', true));
  }
  await stopProcess(knot.child);
  await stopProcess(srv.child);
  for (const c of caps) await stopProcess(c.child);
  const shape = (who: string): unknown[] => {
    const ids = new Set(asked[who]!.map((d) => d.id));
    return decode(join(dir, `${who}.fstrm`))
      .filter((m) => ids.has(header(m.query_message ?? m.response_message ?? '').id))
      .map((m) => {
        const h = header(m.query_message ?? m.response_message ?? '');
        return [m.type, m.socket_family, m.socket_protocol, m.query_address, h.qname, h.qtype, h.rcode].join(
          ' ',
        );
      })
      .sort();
  };
  tt.same(shape('popdns'), shape('knot'), 'AQ/AR, family, protocol, client address, question, rcode');
});
