/**
 * SVCB/HTTPS SvcParams strictness: the failure cases of RFC 9460 Appendix D.3 and the rules of §2.1,
 * §7 and §8, in presentation form and in RFC 3597 wire form; every key of the IANA SvcParamKeys
 * registry by name (RFC 9460 §14.3.2, RFC 9461, RFC 9540, tls-supported-groups). Expected bytes are
 * written from the RFCs' wire formats.
 */
import t from 'tap';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import { rdataFromText, rdataToText, tokenize } from '../../src/wire/rdata.js';

const O = nameFromText('example.com.');
const enc = (text: string, type: number = TYPE.SVCB): string =>
  Buffer.from(rdataFromText(type, tokenize(text), O)).toString('hex');
const hex = (s: string): string => s.replace(/\s+/g, '').toLowerCase();
/** `1 .` then the params, as wire hex. */
const head = '0001 00';

t.test('RFC 9460 Appendix D.3: every failure case is refused', (tt) => {
  const cases: [string, RegExp][] = [
    ['1 foo.example.com. key123=abc key123=def', /appears twice/],
    ['1 foo.example.com. mandatory', /needs a value/],
    ['1 foo.example.com. alpn', /needs a value/],
    ['1 foo.example.com. port', /needs a value/],
    ['1 foo.example.com. ipv4hint', /needs a value/],
    ['1 foo.example.com. ipv6hint', /needs a value/],
    ['1 foo.example.com. no-default-alpn=abc', /takes no value/],
    ['1 foo.example.com. mandatory=key123', /mandatory lists key123 which is not present/],
    ['1 foo.example.com. mandatory=mandatory', /must not list itself/],
    ['1 foo.example.com. mandatory=key123,key123 key123=abc', /lists key123 twice/],
  ];
  for (const [text, why] of cases) tt.throws(() => enc(text), why, text);
  tt.end();
});

t.test('more malformed SvcParams (RFC 9460 §2.1, §7, §8)', (tt) => {
  const cases: [string, RegExp][] = [
    ['1 . alpn=', /needs a value/],
    ['1 . alpn=h2,,h3', /empty protocol id/],
    ['1 . alpn=h2,', /empty protocol id/],
    ['1 . no-default-alpn', /no-default-alpn without alpn/],
    ['1 . alpn=h2 alpn=h3', /appears twice/],
    ['1 . port=65536', /not a number/],
    ['1 . ipv4hint=192.0.2.1,', /empty item/],
    ['1 . ipv6hint=1.2.3.4', /not an IPv6 address/],
    ['1 . ipv4hint=2001:db8::1', /not an IPv4 address/],
    ['1 . mandatory=alpn,ALPN alpn=h2', /lists alpn twice/],
    ['1 . mandatory=\\097lpn alpn=h2', /must not contain escapes/],
    ['1 . ech=not*base64', /not base64/],
    ['1 . key65535', /reserved as invalid/],
    ['1 . key65536=x', /unknown SvcParamKey/],
    ['1 . foo=bar', /unknown SvcParamKey "foo"/],
    ['1 . ohttp=1', /takes no value/],
    ['1 . dohpath=/dns-query', /dns variable/],
    ['1 . dohpath=dns-query{?dns}', /relative URI template/],
    ['1 . tls-supported-groups=29,29', /lists 29 twice/],
    ['1 . tls-supported-groups=x', /not a number/],
  ];
  for (const [text, why] of cases) tt.throws(() => enc(text), why, text);
  tt.end();
});

t.test('the same failures in RFC 3597 wire form are refused', (tt) => {
  const generic = (paramsHex: string): string => {
    const rd = hex(`${head} ${paramsHex}`);
    return `\\# ${rd.length / 2} ${rd}`;
  };
  const cases: [string, RegExp][] = [
    ['007b 0001 61 007b 0001 62', /strictly increasing/], // key123 twice
    ['0003 0002 0035 0001 0003 026832', /strictly increasing/], // out of order
    ['0000 0000', /malformed SvcParam mandatory/], // empty mandatory
    ['0000 0002 0000', /lists itself/],
    ['0000 0004 007b 007b 007b 0001 61', /strictly increasing/], // mandatory=key123,key123
    ['0000 0002 007b', /mandatory lists key123 which is not present/],
    ['0001 0000', /alpn/], // empty alpn
    ['0001 0004 02 6832 00', /alpn/], // a zero-length id
    ['0002 0001 61', /takes no value/],
    ['0002 0000', /no-default-alpn without alpn/],
    ['0003 0001 35', /port/],
    ['0004 0003 c00002', /ipv4hint/],
    ['0008 0001 00', /takes no value/],
    ['ffff 0000', /reserved as invalid/],
  ];
  for (const [params, why] of cases) tt.throws(() => enc(generic(params)), why, params);
  tt.end();
});

t.test('keys in any order on input, in increasing order on the wire and in output', (tt) => {
  const a = enc('1 . port=443 key7777=x alpn=h2 mandatory=port,alpn ipv4hint=192.0.2.1');
  tt.equal(
    a,
    hex(`${head} 0000 0004 0001 0003  0001 0003 02 6832  0003 0002 01bb  0004 0004 c0000201  1e61 0001 78`),
  );
  tt.equal(
    rdataToText(TYPE.SVCB, Buffer.from(a, 'hex'), O),
    '1 . mandatory=alpn,port alpn="h2" port=443 ipv4hint=192.0.2.1 key7777="x"',
  );
  tt.end();
});

t.test('every registered key by name (IANA SvcParamKeys), keyNNNNN for the rest', (tt) => {
  tt.equal(
    enc('1 . alpn=h2 no-default-alpn', TYPE.HTTPS),
    hex(`${head} 0001 0003 02 6832  0002 0000`),
    'no-default-alpn (RFC 9460 §7.1.1)',
  );
  tt.equal(enc('1 . ech=AEX+DQA='), hex(`${head} 0005 0005 0045fe0d00`), 'ech (base64, RFC 9460 §7.3)');
  tt.equal(
    enc('1 . ipv6hint=2001:db8::1'),
    hex(`${head} 0006 0010 20010db8000000000000000000000001`),
    'ipv6hint',
  );
  tt.equal(
    enc('1 . alpn=h2 dohpath=/dns-query{?dns}'),
    hex(`${head} 0001 0003 02 6832  0007 0010 ${Buffer.from('/dns-query{?dns}').toString('hex')}`),
    'dohpath (RFC 9461 §5): the template as UTF-8',
  );
  tt.equal(enc('1 . ohttp', TYPE.HTTPS), hex(`${head} 0008 0000`), 'ohttp (RFC 9540 §4): no value');
  tt.equal(
    enc('1 . tls-supported-groups=29,23'),
    hex(`${head} 0009 0004 001d 0017`),
    'tls-supported-groups: 16-bit group ids',
  );
  tt.equal(
    enc('1 . key9=29,23'),
    enc('1 . tls-supported-groups=29,23'),
    'keyNNNNN names a registered key too',
  );
  tt.equal(
    enc('1 . key65280="private use"'),
    hex(`${head} ff00 000b ${Buffer.from('private use').toString('hex')}`),
  );
  tt.equal(enc('1 . key666'), hex(`${head} 029a 0000`), 'an unknown key with no value');
  for (const text of [
    '1 . alpn=h2 dohpath=/dns-query{?dns}',
    '1 . ohttp alpn=h3',
    '1 . tls-supported-groups=29,23',
    '1 . key666',
    '1 . key9999="a b"',
  ]) {
    const wire = enc(text);
    const printed = rdataToText(TYPE.SVCB, Buffer.from(wire, 'hex'), O);
    tt.equal(enc(printed), wire, `round trip: ${printed}`);
  }
  tt.end();
});
