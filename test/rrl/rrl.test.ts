/**
 * Response rate limiting: the token buckets (BIND's accounting: credit `rate` per second up to one
 * second's worth, one token per response, debt down to −window × rate), slip, prefixes, exemptions,
 * the bounded table; and, through the packet handler, the keys of each kind of answer, TCP and valid
 * cookies never limited, and the COOKIE option in responses (RFC 7873 §5.2). Times are given, never read.
 */
import { BlockList } from 'node:net';
import fc from 'fast-check';
import t from 'tap';
import { type Node, parseDocument } from 'yaml';
import { parseRrlSection } from '../../src/rrl/config.js';
import { checkExempt, KIND, RateLimiter, RRL, RRL_DEFAULTS, TABLE_SLOTS } from '../../src/rrl/rrl.js';
import { defaultConfig, loadConfigFile, parseConfig } from '../../src/server/config.js';
import { parseIp } from '../../src/wire/ipaddr.js';

const ip = (s: string): [Uint8Array, number] => {
  const b = new Uint8Array(16);
  return [b, parseIp(s, b)];
};

function run(l: RateLimiter, client: string, kind: number, name: number, times: number[]): number[] {
  const [b, n] = ip(client);
  const counts = [0, 0, 0];
  for (const ms of times) counts[l.decide(b, n, kind, name, ms)]! += 1;
  return counts;
}
const burst = (n: number, at: number): number[] => new Array<number>(n).fill(at);

t.test('a bucket: one second of tokens, then the rate; slip; debt down to window × rate', (tt) => {
  const l = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 10, slip: 2, window: 5 });
  tt.same(run(l, '192.0.2.1', KIND.POSITIVE, 7, burst(10, 1000)), [10, 0, 0], 'the first 10 pass');
  tt.same(run(l, '192.0.2.1', KIND.POSITIVE, 7, burst(10, 1000)), [0, 5, 5], 'then every 2nd slips');
  // A flood of 100/s for 5 s: it never gets back above zero (each second's 10 tokens pay off debt).
  const flood: number[] = [];
  for (let s = 0; s < 5; s++) for (let i = 0; i < 100; i++) flood.push(2000 + s * 1000 + i * 10);
  tt.same(run(l, '192.0.2.1', KIND.POSITIVE, 7, flood), [0, 250, 250], 'a sustained flood is limited whole');
  // Debt is at most window × rate = 50 tokens: 5 s of quiet pays it off, and one more second refills.
  tt.same(run(l, '192.0.2.1', KIND.POSITIVE, 7, [6990 + 4000]), [0, 1, 0], 'still in debt after 4 s');
  tt.same(
    run(l, '192.0.2.1', KIND.POSITIVE, 7, [6990 + 4000 + 6100]),
    [1, 0, 0],
    'forgiven after the window',
  );
  // Below the rate nothing is limited: 10/s for 10 s.
  const steady = Array.from({ length: 100 }, (_, i) => 30_000 + i * 100);
  tt.same(run(l, '192.0.2.9', KIND.POSITIVE, 7, steady), [100, 0, 0], 'at the rate: all pass');
  const slip0 = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 1, slip: 0 });
  tt.same(run(slip0, '192.0.2.1', KIND.POSITIVE, 1, burst(5, 1)), [1, 4, 0], 'slip 0: never truncated');
  const slip1 = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 1, slip: 1 });
  tt.same(run(slip1, '192.0.2.1', KIND.POSITIVE, 1, burst(5, 1)), [1, 0, 4], 'slip 1: always truncated');
  tt.end();
});

t.test('keys: prefix, kind and name; errors and NXDOMAIN at errors-per-second', (tt) => {
  const l = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 5, errorsPerSecond: 2, slip: 0 });
  tt.same(run(l, '192.0.2.1', KIND.POSITIVE, 1, burst(5, 1)), [5, 0, 0]);
  tt.same(run(l, '192.0.2.200', KIND.POSITIVE, 1, burst(1, 1)), [0, 1, 0], 'same /24: same bucket');
  tt.same(run(l, '192.0.3.1', KIND.POSITIVE, 1, burst(5, 1)), [5, 0, 0], 'another /24: its own');
  tt.same(run(l, '192.0.2.1', KIND.POSITIVE, 2, burst(5, 1)), [5, 0, 0], 'another name: its own');
  tt.same(run(l, '192.0.2.1', KIND.NODATA, 1, burst(5, 1)), [5, 0, 0], 'another kind: its own');
  tt.same(run(l, '192.0.2.1', KIND.ERROR, 0, burst(3, 1)), [2, 1, 0], 'errors: errors-per-second');
  tt.same(run(l, '192.0.2.1', KIND.NXDOMAIN, 9, burst(3, 1)), [2, 1, 0], 'NXDOMAIN: errors-per-second');
  tt.same(run(l, '2001:db8:1:100::1', KIND.POSITIVE, 1, burst(5, 1)), [5, 0, 0]);
  tt.same(run(l, '2001:db8:1:1ff::2', KIND.POSITIVE, 1, burst(1, 1)), [0, 1, 0], 'same /56');
  tt.same(run(l, '2001:db8:1:200::1', KIND.POSITIVE, 1, burst(1, 1)), [1, 0, 0], 'another /56');
  tt.end();
});

t.test('exempt: 127.0.0.1, ::1 and the configured prefixes, matched as net.BlockList does', (tt) => {
  const exempt = ['192.0.2.0/24', '2001:db8:53::/48', '198.51.100.7'];
  tt.equal(checkExempt(exempt), null);
  tt.match(checkExempt(['192.0.2.0/33']), /prefix length/);
  tt.match(checkExempt(['example.com/24']), /not an address/);
  const l = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 1, exempt });
  for (const a of ['127.0.0.1', '::1', '192.0.2.77', '2001:db8:53:ff::1', '198.51.100.7']) {
    tt.same(run(l, a, KIND.POSITIVE, 1, burst(20, 1)), [20, 0, 0], `${a} is never limited`);
  }
  // (Same /24s as exempt addresses, whose buckets are spent: limited at once.)
  tt.equal(run(l, '127.0.0.2', KIND.POSITIVE, 1, burst(3, 1))[0], 0, '127.0.0.2 is limited');
  tt.equal(
    run(l, '198.51.100.8', KIND.POSITIVE, 1, burst(3, 1))[0],
    0,
    'a neighbour of an exempt /32 is limited',
  );
  // Our matcher agrees with Node's own CIDR matcher on random addresses.
  const bl = new BlockList();
  bl.addAddress('127.0.0.1', 'ipv4');
  bl.addAddress('::1', 'ipv6');
  bl.addSubnet('192.0.2.0', 24, 'ipv4');
  bl.addSubnet('2001:db8:53::', 48, 'ipv6');
  bl.addAddress('198.51.100.7', 'ipv4');
  const probe = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 1, slip: 0, exempt });
  let n = 0;
  const near = fc.oneof(
    fc.ipV4(),
    fc.tuple(fc.nat(255), fc.nat(255)).map(([a, b]) => `192.0.${a % 4}.${b}`),
    fc.ipV6(),
    fc
      .tuple(fc.nat(0xffff), fc.nat(0xffff))
      .map(([a, b]) => `2001:db8:${(53 + (a % 2)).toString()}:${b.toString(16)}::${a.toString(16)}`),
  );
  fc.assert(
    fc.property(near, (a) => {
      const [b, len] = ip(a);
      if (len === 0) return true;
      // A new name each time: the first response passes, the second tells whether a is exempt.
      n++;
      probe.decide(b, len, KIND.POSITIVE, n, 1);
      const exempted = probe.decide(b, len, KIND.POSITIVE, n, 1) === RRL.PASS;
      return exempted === bl.check(a, len === 4 ? 'ipv4' : 'ipv6');
    }),
    { numRuns: 2000 },
  );
  tt.end();
});

t.test('the table is bounded: a random-prefix flood evicts, never grows', (tt) => {
  const l = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 2 });
  const before = process.memoryUsage().arrayBuffers;
  const b = new Uint8Array(16);
  for (let i = 0; i < TABLE_SLOTS * 2; i++) {
    b[0] = 10;
    b[1] = i >> 16;
    b[2] = (i >> 8) & 0xff;
    l.decide(b, 4, KIND.POSITIVE, i, 1 + i / 1000);
  }
  tt.ok(process.memoryUsage().arrayBuffers - before < 1 << 20, 'no memory taken per bucket');
  tt.end();
});

t.test('with --workers N each process takes 1/N of the rate', (tt) => {
  const l = new RateLimiter({ ...RRL_DEFAULTS, responsesPerSecond: 30, slip: 0 }, 3);
  tt.same(run(l, '192.0.2.1', KIND.POSITIVE, 1, burst(12, 1)), [10, 2, 0]);
  tt.end();
});

t.test('config: the rrl and cookies sections', (tt) => {
  const cfg = parseConfig(
    'rrl:\n  responses-per-second: 5\n  errors-per-second: 3\n  slip: 0\n  ipv4-prefix: 32\n  ipv6-prefix: 64\n  window: 30s\n  exempt: [192.0.2.0/24, "2001:db8::/32"]\ncookies:\n  secret: e5e973e5a6b2a43f48e7dc849e37bfcf\n  staging-secret: 445536bcd2513298075a5d379663c962\n  require: true\n',
    'x.yaml',
    defaultConfig('t', 1),
  );
  tt.same(cfg.rrl, {
    responsesPerSecond: 5,
    errorsPerSecond: 3,
    slip: 0,
    ipv4Prefix: 32,
    ipv6Prefix: 64,
    window: 30,
    exempt: ['192.0.2.0/24', '2001:db8::/32'],
  });
  tt.equal(cfg.cookies?.require, true);
  tt.equal(Buffer.from(cfg.cookies!.stagingSecret!).toString('hex'), '445536bcd2513298075a5d379663c962');
  tt.same(parseConfig('rrl:\n', 'x.yaml', defaultConfig('t', 1)).rrl, RRL_DEFAULTS, 'empty: the defaults');
  tt.equal(defaultConfig('t', 1).rrl, null, 'off unless present');
  const deploy = loadConfigFile('deploy/popdns.yaml', defaultConfig('t', 2));
  tt.same(
    deploy.rrl,
    { ...RRL_DEFAULTS, exempt: ['192.0.2.0/24'] },
    'deploy/popdns.yaml: the documented rrl',
  );
  tt.equal(deploy.cookies?.require, false, 'deploy/popdns.yaml: cookies');
  tt.equal(deploy.cookies?.stagingSecret, null);
  const bad = (text: string, re: RegExp): void => {
    tt.throws(() => parseConfig(text, 'x.yaml', defaultConfig('t', 1)), { message: re });
  };
  bad('rrl:\n  slip: 11\n', /x\.yaml:2:9: error: rrl\.slip must be a whole number 0\.\.10/);
  bad('rrl:\n  exempt: [192.0.2.0/40]\n', /x\.yaml:2:12: error: rrl\.exempt: .*prefix length/);
  bad('rrl:\n  rate: 5\n', /unknown rrl setting "rate"/);
  bad('rrl:\n  window: forever\n', /rrl\.window must be a duration/);
  bad('cookies:\n  secret: abc\n', /x\.yaml:2:11: error: cookies\.secret must be 32 hex digits/);
  bad('cookies:\n  require: true\n', /cookies needs a secret/);
  bad(
    'cookies:\n  secret: e5e973e5a6b2a43f48e7dc849e37bfcf\n  require: yes\n',
    /cookies\.require must be true or false/,
  );
  const fail = (_n: Node, m: string): never => {
    throw new Error(m);
  };
  tt.throws(() => parseRrlSection(parseDocument('[1]').contents as Node, fail), /mapping/);
  // An empty value is not 0 (slip: 0 would mean never slip).
  for (const v of ['', '""', 'false'])
    tt.throws(
      () => parseRrlSection(parseDocument(`slip: ${v}`).contents as Node, fail),
      /rrl\.slip/,
      `slip: ${v}`,
    );
  tt.end();
});
