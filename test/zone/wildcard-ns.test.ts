/**
 * NS at a wildcard owner (RFC 4592 §4.2 discourages it, does not forbid it): the zone loads with a
 * warning, and popdns answers as Knot, the oracle, does.
 */
import t from 'tap';
import { resolve } from '../../src/query/engine.js';
import { typeFromText } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone } from '../../src/zone/zone.js';
import { ZoneSet } from '../../src/zone/zoneset.js';
import { buildQuery, tcpExchange } from '../helpers/dns.js';
import { normalizeAnswer, normalizeWire, startKnot } from '../helpers/knot.js';
import { needTool } from '../helpers/peers.js';

const TEXT = `$ORIGIN example.com.
$TTL 600
@ SOA ns1 hostmaster 1 7200 3600 1209600 3600
@ NS ns1
ns1 A 192.0.2.1
* NS ns.other.example.
* A 192.0.2.9
sub.* A 192.0.2.10
x TXT "x"
`;
const parsed = parseMasterFile(TEXT, { file: 'example.com.zone', origin: nameFromText('example.com.') });

t.test('the zone loads; the wildcard NS is one warning at its line', (tt) => {
  const built = buildZone(
    parseMasterFile(TEXT, { file: 'example.com.zone', origin: nameFromText('example.com.') }),
  );
  tt.ok(built.zone, 'loads');
  tt.same(built.diagnostics.map((d) => `${d.pos.line}:${d.pos.col} ${d.severity} ${d.code}`).sort(), [
    '6:1 warning POPDNS_W_WILDCARD_NS',
    '8:1 warning POPDNS_W_NOT_HOSTNAME',
  ]);
  tt.end();
});

t.test('answers as knotd does', async (tt) => {
  if (!needTool(tt, 'knotd', 'knot')) return;
  const zone = buildZone(
    parseMasterFile(TEXT, { file: 'example.com.zone', origin: nameFromText('example.com.') }),
  ).zone!;
  const set = new ZoneSet([zone]);
  const knot = await startKnot(tt, [parsed]);
  const queries = [
    ['foo.example.com.', 'A'],
    ['foo.example.com.', 'NS'],
    ['foo.example.com.', 'TXT'],
    ['a.b.example.com.', 'A'],
    ['*.example.com.', 'A'],
    ['*.example.com.', 'NS'],
    ['sub.*.example.com.', 'A'],
    ['x.example.com.', 'TXT'],
    ['example.com.', 'NS'],
  ];
  for (const [name, type] of queries) {
    const ours = normalizeAnswer(resolve(set, nameFromText(name!), typeFromText(type!)!));
    const [raw] = await tcpExchange(knot.port, [buildQuery(name!, type!, { edns: true, bufsize: 4096 })]);
    tt.same(ours, normalizeWire(raw!), `${name} ${type}`);
  }
});
