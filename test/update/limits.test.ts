/**
 * `update-limits:` parsing (defaults, errors, the `updates:` contract beside it), the per-key token
 * bucket (explicit clock, no timing), and the RRset-size limit in the engine.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { parseDocument } from 'yaml';
import { defaultConfig, parseConfig } from '../../src/server/config.js';
import { parseUpdatesSection } from '../../src/update/config.js';
import { UpdateCounters } from '../../src/update/counters.js';
import { applyUpdate, parseUpdate, UPDATE_RCODE } from '../../src/update/engine.js';
import { UpdateService } from '../../src/update/service.js';
import { QueryInfo } from '../../src/wire/message.js';
import {
  parseUpdateLimitsSection,
  UPDATE_LIMIT_DEFAULTS,
  UpdateRateLimiter,
} from '../../src/update/limits.js';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { parseMasterFile } from '../../src/zone/masterfile.js';
import { buildZone } from '../../src/zone/zone.js';

const fail = (_n: unknown, m: string): never => {
  throw new Error(m);
};
const SECRET = Buffer.from('ops-key-for-popdns-limits-test!!').toString('base64');

t.test('update-limits: defaults, values, errors; updates: unchanged', (tt) => {
  tt.same(parseUpdateLimitsSection(parseDocument('~').contents!, fail), UPDATE_LIMIT_DEFAULTS);
  tt.same(
    parseUpdateLimitsSection(parseDocument('{ max-records: 5000, rate: 0.5, burst: 3 }').contents!, fail),
    { ...UPDATE_LIMIT_DEFAULTS, maxRecords: 5000, rate: 0.5, burst: 3 },
  );
  tt.throws(
    () => parseUpdateLimitsSection(parseDocument('{ max-records: 0 }').contents!, fail),
    /1\.\.100000000/,
  );
  tt.throws(() => parseUpdateLimitsSection(parseDocument('{ rate: -1 }').contents!, fail), /rate/);
  // An empty value or a boolean is not 0 (which would mean no rate limit at all).
  for (const v of ['', '""', 'false', '~', '" "'])
    tt.throws(
      () => parseUpdateLimitsSection(parseDocument(`{ rate: ${v} }`).contents!, fail),
      /rate/,
      `rate: ${v}`,
    );
  tt.same(
    parseUpdateLimitsSection(parseDocument('{ rate: "2" }').contents!, fail).rate,
    2,
    'a quoted number',
  );
  tt.throws(() => parseUpdateLimitsSection(parseDocument('{ max-rrset: 3 }').contents!, fail), /unknown/);
  const cfg = parseConfig(
    `tsig-keys:
  ops.example.com: { algorithm: hmac-sha256, secret: "${SECRET}" }
updates:
  example.com:
    - { key: ops.example.com }
update-limits:
  max-records-per-update: 10
  max-records-per-type: 20
`,
    'popdns.yaml',
    defaultConfig('test', 1),
  );
  tt.equal(
    cfg.updates.get('example.com.')?.[0]?.key,
    'ops.example.com.',
    'updates: still a zone → rules map',
  );
  tt.equal(cfg.updateLimits.maxRecordsPerUpdate, 10);
  tt.equal(cfg.updateLimits.maxRecordsPerType, 20);
  tt.equal(cfg.updateLimits.rate, UPDATE_LIMIT_DEFAULTS.rate, 'unset keys keep their defaults');
  tt.throws(
    () => parseConfig('update-limits: { burst: x }\n', 'popdns.yaml', defaultConfig('test', 1)),
    /popdns\.yaml:1:\d+: error: update-limits\.burst/,
  );
  tt.end();
});

t.test('token bucket per key', (tt) => {
  const r = new UpdateRateLimiter(2, 3); // 2 per second, 3 at once
  const at = 1_000_000;
  tt.same([r.take('a', at), r.take('a', at), r.take('a', at), r.take('a', at)], [true, true, true, false]);
  tt.ok(r.take('b', at), 'another key has its own bucket');
  tt.notOk(r.take('a', at + 400), '0.8 token after 400 ms: not yet');
  tt.ok(r.take('a', at + 500), 'one token after 500 ms');
  tt.same(
    [r.take('a', at + 10_000), r.take('a', at + 10_000), r.take('a', at + 10_000), r.take('a', at + 10_000)],
    [true, true, true, false],
    'refills up to the burst only',
  );
  const off = new UpdateRateLimiter(0, 1);
  tt.ok(
    [1, 2, 3, 4].every(() => off.take('a', at)),
    'rate 0: no limit',
  );
  tt.end();
});

t.test('max-records-per-type in the engine: only RRsets the update grows', (tt) => {
  const origin = nameFromText('example.com.');
  const zone = buildZone(
    parseMasterFile(
      '$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\nbig TXT "1"\nbig TXT "2"\nbig TXT "3"\n',
      { file: 'x', origin },
    ),
  ).zone!;
  const rules = parseUpdatesSection(parseDocument('example.com:\n  - { key: ops }\n').contents!, fail).get(
    'example.com.',
  )!;
  /** UPDATE adding `owner TXT "v"` (RFC 2136 §2.5.1). */
  const add = (owner: string, v: string): Buffer => {
    const h = Buffer.alloc(12);
    h.writeUInt16BE(5 << 11, 2);
    h.writeUInt16BE(1, 4);
    h.writeUInt16BE(1, 8);
    const rd = Buffer.concat([Buffer.from([v.length]), Buffer.from(v)]);
    const rr = Buffer.alloc(10);
    rr.writeUInt16BE(TYPE.TXT, 0);
    rr.writeUInt16BE(1, 2);
    rr.writeUInt32BE(300, 4);
    rr.writeUInt16BE(rd.length, 8);
    return Buffer.concat([h, origin, Buffer.from([0, 6, 0, 1]), nameFromText(owner, origin), rr, rd]);
  };
  const run = (m: Buffer, max: number): number => {
    const u = parseUpdate(m);
    if (typeof u === 'string') throw new Error(u);
    return applyUpdate(zone, u, { key: 'ops.', rules, maxRecordsPerType: max, now: 1 }).rcode;
  };
  tt.equal(run(add('big', '4'), 3), UPDATE_RCODE.REFUSED, 'a 4th TXT past a limit of 3: REFUSED');
  tt.equal(run(add('big', '4'), 4), UPDATE_RCODE.NOERROR, 'within the limit');
  tt.equal(
    run(add('small', 'x'), 2),
    UPDATE_RCODE.NOERROR,
    'an RRset already over the limit elsewhere does not block',
  );
  tt.end();
});

t.test('UPDATE responses: OPT when the request had one (RFC 6891 §7), BADVERS for version 1', (tt) => {
  const origin = nameFromText('example.com.');
  const zone = buildZone(
    parseMasterFile('$TTL 300\n@ SOA ns1 h 1 3600 600 86400 300\n@ NS ns1\nns1 A 192.0.2.1\n', {
      file: 'x',
      origin,
    }),
  ).zone!;
  const policies = parseUpdatesSection(parseDocument('example.com:\n  - { key: ops }\n').contents!, fail);
  const dir = mkdtempSync(join(tmpdir(), 'popdns-opt-'));
  tt.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const svc = new UpdateService(
    { policies, dataDir: dir, writer: true, ednsUdpSize: 1400 },
    {
      fileZone: () => zone,
      otherZone: () => false,
      commit: () => undefined,
      busy: () => null,
      info: () => undefined,
      error: () => undefined,
    },
    new UpdateCounters(),
  );
  // An UPDATE with an empty update section (NOERROR, no change).
  const h = Buffer.alloc(12);
  h.writeUInt16BE(5 << 11, 2);
  h.writeUInt16BE(1, 4);
  const msg = Buffer.concat([h, origin, Buffer.from([0, 6, 0, 1])]);
  const tsig = {
    status: 'ok' as const,
    key: { name: 'ops.', algorithm: 'hmac-sha256' as const, secret: Buffer.alloc(32) },
    error: 0,
    origId: 0,
    stripped: msg,
  };
  const q = new QueryInfo();
  q.opcode = 5;
  const plain = svc.hook(msg, q, '127.0.0.1', tsig)!;
  tt.equal(plain.readUInt16BE(10), 0, 'no EDNS in the request: no OPT');
  q.hasEdns = true;
  q.dnssecOk = true;
  const withOpt = svc.hook(msg, q, '127.0.0.1', tsig)!;
  tt.equal(withOpt[3]! & 0xf, 0, 'NOERROR');
  tt.equal(withOpt.readUInt16BE(10), 1, 'ARCOUNT 1');
  const p = 12 + origin.length + 4;
  tt.same(
    [
      withOpt[p],
      withOpt.readUInt16BE(p + 1),
      withOpt.readUInt16BE(p + 3),
      withOpt.readUInt32BE(p + 5),
      withOpt.length,
    ],
    [0, TYPE.OPT, 1400, 0x8000, p + 11],
    'OPT: root, type 41, our payload size, version 0, DO echoed, no options',
  );
  q.ednsVersion = 1;
  const bad = svc.hook(msg, q, '127.0.0.1', tsig)!;
  tt.equal(bad[3]! & 0xf, 0, 'BADVERS: 0 in the header');
  tt.equal(bad[p + 5], 1, 'BADVERS: extended rcode 1 in the OPT (16 = 1 << 4)');
  tt.end();
});
