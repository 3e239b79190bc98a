/**
 * RDATA presentation ⇄ wire. Expected bytes are written by hand from the RFCs (RFC 1035, 2782, 3403,
 * 3597, 4034, 6698, 8659, 9460 Appendix D); dns-packet's decoders check our encodings independently.
 */
import packet from 'dns-packet';
import fc from 'fast-check';
import t from 'tap';
import { TYPE } from '../../src/wire/constants.js';
import { nameFromText } from '../../src/wire/name.js';
import {
  RdataError,
  rdataFromFields,
  rdataFromText,
  rdataNames,
  rdataTarget,
  rdataToFields,
  rdataToText,
  tokenize,
} from '../../src/wire/rdata.js';

const O = nameFromText('example.com.');
const enc = (type: number, text: string): string =>
  Buffer.from(rdataFromText(type, tokenize(text), O)).toString('hex');
const hex = (s: string): string => s.replace(/\s+/g, '').toLowerCase();
const codecs = packet as unknown as { record(type: string): { decode(b: Buffer): unknown } };
const dp = (type: string, rd: Uint8Array): unknown =>
  codecs
    .record(type)
    .decode(Buffer.concat([Buffer.from([rd.length >> 8, rd.length & 0xff]), Buffer.from(rd)]));

t.test('common types, bytes from RFC 1035 / 2782 / 3403 / 6698 / 8659', (tt) => {
  tt.equal(enc(TYPE.A, '192.0.2.1'), 'c0000201');
  tt.equal(enc(TYPE.AAAA, '2001:db8::1'), hex('20010db8 00000000 00000000 00000001'));
  tt.equal(enc(TYPE.AAAA, '::ffff:192.0.2.1'), hex('00000000 00000000 0000ffff c0000201'));
  tt.equal(enc(TYPE.NS, 'ns1'), hex('03 6e7331 07 6578616d706c65 03 636f6d 00'));
  tt.equal(enc(TYPE.MX, '10 mail.example.net.'), hex('000a 04 6d61696c 07 6578616d706c65 03 6e6574 00'));
  tt.equal(enc(TYPE.SRV, '0 5 5060 sip'), hex('0000 0005 13c4 03 736970 07 6578616d706c65 03 636f6d 00'));
  tt.equal(
    enc(TYPE.SOA, 'ns1 hostmaster 1 2h 1h 2w 5m'),
    hex(`03 6e7331 07 6578616d706c65 03 636f6d 00 0a 686f73746d6173746572 07 6578616d706c65 03 636f6d 00
         00000001 00001c20 00000e10 00127500 0000012c`),
    'SOA timers accept BIND units',
  );
  tt.equal(enc(TYPE.TXT, '"a b" c'), hex('03 612062 01 63'));
  tt.equal(enc(TYPE.TXT, '"say \\"hi\\"" \\065\\066'), hex('08 736179202268692 2 02 4142').replace(/ /g, ''));
  tt.equal(enc(TYPE.TXT, '""'), '00', 'an empty string');
  const long = rdataFromText(TYPE.TXT, tokenize(`"${'x'.repeat(300)}"`), O);
  tt.equal(long[0], 255, 'over 255 octets: split');
  tt.equal(long[256], 45);
  tt.equal(long.length, 302);
  tt.equal(enc(TYPE.CAA, '0 issue "ca.example.net"'), hex('00 05 6973737565 63612e6578616d706c652e6e6574'));
  tt.equal(
    enc(TYPE.NAPTR, '100 10 "U" "E2U+sip" "!^.*$!sip:info@example.com!" .'),
    Buffer.concat([
      Buffer.from([0, 100, 0, 10, 1, 0x55, 7]),
      Buffer.from('E2U+sip'),
      Buffer.from([27]),
      Buffer.from('!^.*$!sip:info@example.com!'),
      Buffer.from([0]),
    ]).toString('hex'),
  );
  tt.equal(enc(TYPE.TLSA, '3 1 1 0123 4567'), '03010101234567', 'hex may be split across tokens');
  tt.equal(enc(TYPE.SSHFP, '4 2 abcdef'), '0402abcdef');
  tt.equal(
    enc(TYPE.DS, '60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118'),
    hex('ec45 05 01 2bb183af5f22588179a53b0a98631fad1a292118'),
    'RFC 4034 §5.4',
  );
  tt.equal(enc(TYPE.DNSKEY, '256 3 5 AQPS sZ4='), hex('0100 03 05 0103d2b19e'));
  tt.equal(enc(TYPE.DNAME, 'example.net.'), hex('07 6578616d706c65 03 6e6574 00'));
  tt.equal(enc(TYPE.PTR, 'a\\.b'), hex('03 612e62 07 6578616d706c65 03 636f6d 00'), 'escaped dot in a label');
  tt.end();
});

t.test('SVCB/HTTPS: RFC 9460 Appendix D test vectors', (tt) => {
  // D.1 AliasMode
  tt.equal(enc(TYPE.SVCB, '0 foo.example.com.'), hex('0000 03 666f6f 07 6578616d706c65 03 636f6d 00'));
  // D.2 ServiceMode, with port
  tt.equal(
    enc(TYPE.SVCB, '16 foo.example.com. port=53'),
    hex('0010 03 666f6f 07 6578616d706c65 03 636f6d 00 0003 0002 0035'),
  );
  // D.2 generic key with quoted value
  tt.equal(
    enc(TYPE.SVCB, '1 foo.example.com. key667=hello'),
    hex('0001 03 666f6f 07 6578616d706c65 03 636f6d 00 029b 0005 68656c6c6f'),
  );
  // D.2 two ipv6hints
  tt.equal(
    enc(TYPE.SVCB, '1 foo.example.com. ipv6hint=2001:db8::1,2001:db8::53:1'),
    hex(`0001 03 666f6f 07 6578616d706c65 03 636f6d 00 0006 0020
         20010db8000000000000000000000001 20010db8000000000000000000530001`),
  );
  // D.2 params given out of order are sorted; mandatory lists alpn and ipv4hint
  tt.equal(
    enc(TYPE.SVCB, '16 foo.example.org. alpn=h2,h3-19 mandatory=ipv4hint,alpn ipv4hint=192.0.2.1'),
    hex(`0010 03 666f6f 07 6578616d706c65 03 6f7267 00
         0000 0004 0001 0004
         0001 0009 02 6832 05 68332d3139
         0004 0004 c0000201`),
  );
  // D.2 escaped comma in an alpn value: "f\\\\oo\\\\,bar,h2" → ids "f\\oo,bar" and "h2"
  tt.equal(
    enc(TYPE.SVCB, '16 foo.example.org. alpn="f\\\\\\\\oo\\\\,bar,h2"'),
    hex('0010 03 666f6f 07 6578616d706c65 03 6f7267 00 0001 000c 08 665c6f6f2c626172 02 6832'),
  );
  // D.3 failure cases
  tt.throws(
    () => enc(TYPE.SVCB, '1 foo.example.com. key123=abc key123=def'),
    { code: 'POPDNS_E_RDATA' },
    'duplicate key',
  );
  tt.throws(
    () => enc(TYPE.SVCB, '1 foo.example.com. mandatory=key123'),
    /not present/,
    'mandatory key missing',
  );
  tt.throws(() => enc(TYPE.SVCB, '1 foo.example.com. port'), /needs a value/);
  tt.throws(() => enc(TYPE.SVCB, '1 foo.example.com. no-default-alpn=abc'), /no value/);
  tt.end();
});

t.test('RFC 3597 generic form, for unknown and known types', (tt) => {
  tt.equal(enc(65280, '\\# 4 0A000001'), '0a000001');
  tt.equal(enc(TYPE.A, '\\# 4 C0000201'), 'c0000201', 'known type in generic form');
  tt.equal(enc(65280, '\\# 0'), '');
  tt.throws(() => enc(65280, '\\# 3 0A0000'.concat('01')), /says 3 octets but has 4/);
  tt.throws(() => enc(TYPE.A, '\\# 3 C00002'), /truncated/, 'generic data is checked against the type');
  tt.throws(() => enc(65280, 'hello'), /no known presentation format/);
  tt.equal(rdataToText(65280, Uint8Array.of(10, 0, 0, 1)), '\\# 4 0a000001');
  tt.end();
});

t.test('errors name the field and the token', (tt) => {
  const err = (type: number, text: string): RdataError => {
    try {
      rdataFromText(type, tokenize(text), O);
    } catch (e) {
      if (e instanceof RdataError) return e;
      throw e;
    }
    throw new Error('no error');
  };
  tt.match(err(TYPE.MX, 'ten mail').message, 'MX preference "ten" is not a number 0-65535');
  tt.equal(err(TYPE.MX, 'ten mail').token, 0);
  tt.equal(err(TYPE.MX, '10').token, 1, 'missing exchange points past the end');
  tt.match(err(TYPE.A, '192.0.2.256').message, 'is not an IPv4 address');
  tt.match(err(TYPE.A, '192.0.2.1 extra').message, 'unexpected "extra"');
  tt.equal(err(TYPE.A, '192.0.2.1 extra').token, 1);
  tt.match(err(TYPE.AAAA, '2001:db8::g').message, 'IPv6');
  tt.match(err(TYPE.SRV, '0 0 70000 x').message, 'port "70000"');
  tt.match(err(TYPE.CAA, '0 is-sue x').message, 'letters and digits');
  tt.match(err(TYPE.DS, '1 2 3 xyz').message, 'not hex');
  tt.match(err(TYPE.DNSKEY, '256 3 13 !!!').message, 'not base64');
  tt.match(err(TYPE.NS, `${'a'.repeat(64)}`).message, '63');
  tt.end();
});

t.test('round trips text → wire → text → wire for every type, checked by dns-packet', (tt) => {
  const samples: [number, string, string | null][] = [
    [TYPE.A, '192.0.2.1', 'A'],
    [TYPE.AAAA, '2001:db8::53', 'AAAA'],
    [TYPE.NS, 'ns1.example.com.', 'NS'],
    [TYPE.CNAME, 'www.example.net.', 'CNAME'],
    [TYPE.DNAME, 'example.net.', 'DNAME'],
    [TYPE.PTR, 'host.example.com.', 'PTR'],
    [TYPE.SOA, 'ns1.example.com. hostmaster.example.com. 2026112301 7200 3600 1209600 300', 'SOA'],
    [TYPE.MX, '10 mail.example.com.', 'MX'],
    [TYPE.TXT, '"v=spf1 -all" "second"', 'TXT'],
    [TYPE.SRV, '10 60 5060 sip.example.com.', 'SRV'],
    [TYPE.CAA, '128 iodef "mailto:a@example.com"', 'CAA'],
    [TYPE.NAPTR, '100 10 "S" "SIP+D2U" "" _sip._udp.example.com.', 'NAPTR'],
    [TYPE.DS, '12345 13 2 0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF', 'DS'],
    [
      TYPE.DNSKEY,
      '257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==',
      'DNSKEY',
    ],
    [TYPE.TLSA, '3 1 1 8CB0FC6C527506A053F4F14C8464BEBBD6DEDE2738D11468DD953D7D6A3021F1', 'TLSA'],
    [TYPE.SSHFP, '4 2 123456789ABCDEF67890123456789ABCDEF67890123456789ABCDEF123456789', 'SSHFP'],
    [TYPE.HINFO, '"PC" "Linux"', 'HINFO'],
    [TYPE.RP, 'admin.example.com. txt.example.com.', 'RP'],
    [TYPE.HTTPS, '1 . alpn="h2,h3" ipv4hint=192.0.2.1,192.0.2.2 ech=AEX+DQA=', null],
    [TYPE.SVCB, '0 svc.example.net.', null],
    [TYPE.SVCB, '16 foo.example.org. alpn="f\\\\\\\\oo\\\\,bar,h2"', null],
    [TYPE.NSEC, 'host.example.com. A MX RRSIG NSEC TYPE1234', 'NSEC'],
    [TYPE.NSEC3, '1 1 0 - 2T7B4G4VSA5SMI47K61MV5BV1A22BOJR A RRSIG', null],
    [TYPE.NSEC3PARAM, '1 0 0 AABBCCDD', null],
    [TYPE.RRSIG, 'A 13 3 300 20261207000000 20261123000000 12345 example.com. dGVzdA==', 'RRSIG'],
  ];
  for (const [type, text, dpName] of samples) {
    const w1 = rdataFromText(type, tokenize(text), O);
    const t1 = rdataToText(type, w1);
    const w2 = rdataFromText(type, tokenize(t1), O);
    tt.same(Buffer.from(w2), Buffer.from(w1), `${text} → ${t1}`);
    const rel = rdataToText(type, w1, O);
    tt.same(Buffer.from(rdataFromText(type, tokenize(rel), O)), Buffer.from(w1), `relative: ${rel}`);
    if (dpName) tt.doesNotThrow(() => dp(dpName, w1), `dns-packet decodes our ${dpName}`);
  }
  tt.same(dp('MX', rdataFromText(TYPE.MX, tokenize('10 mail'), O)), {
    preference: 10,
    exchange: 'mail.example.com',
  });
  tt.same(dp('SRV', rdataFromText(TYPE.SRV, tokenize('1 2 3 t'), O)), {
    priority: 1,
    weight: 2,
    port: 3,
    target: 't.example.com',
  });
  tt.end();
});

t.test('names inside RDATA: targets and compressible names', (tt) => {
  const mx = rdataFromText(TYPE.MX, tokenize('10 mail'), O);
  tt.same(rdataTarget(TYPE.MX, mx), nameFromText('mail.example.com.'));
  tt.same(rdataNames(TYPE.MX, mx), [{ offset: 2, compress: true }]);
  const srv = rdataFromText(TYPE.SRV, tokenize('0 0 1 t'), O);
  tt.same(
    rdataNames(TYPE.SRV, srv),
    [{ offset: 6, compress: false }],
    'SRV targets are never compressed (RFC 2782)',
  );
  const soa = rdataFromText(TYPE.SOA, tokenize('a b 1 2 3 4 5'), O);
  tt.equal(rdataNames(TYPE.SOA, soa).length, 2);
  tt.equal(rdataTarget(TYPE.A, Uint8Array.of(1, 2, 3, 4)), null);
  tt.end();
});

t.test('structured fields (the YAML forms)', (tt) => {
  tt.same(
    Buffer.from(rdataFromFields(TYPE.MX, { preference: 10, exchange: 'mail' }, O)),
    Buffer.from(rdataFromText(TYPE.MX, tokenize('10 mail'), O)),
  );
  tt.same(rdataToFields(TYPE.SRV, rdataFromText(TYPE.SRV, tokenize('1 2 3 t'), O), O), {
    priority: 1,
    weight: 2,
    port: 3,
    target: 't',
  });
  tt.same(
    Buffer.from(
      rdataFromFields(TYPE.HTTPS, { priority: 1, target: '.', params: { alpn: ['h2', 'h3'], port: 443 } }, O),
    ),
    Buffer.from(rdataFromText(TYPE.HTTPS, tokenize('1 . alpn=h2,h3 port=443'), O)),
  );
  tt.throws(() => rdataFromFields(TYPE.MX, { preference: 10 }, O), /missing its exchange/);
  tt.throws(
    () => rdataFromFields(TYPE.MX, { preference: 10, exchange: 'x', weight: 1 }, O),
    /no field "weight"/,
  );
  tt.end();
});

t.test('property: wire → text → wire is the identity (A, AAAA, MX, TXT, generic)', (tt) => {
  const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 4, maxLength: 4 }), (b) =>
      Buffer.from(rdataFromText(TYPE.A, tokenize(rdataToText(TYPE.A, b)), O)).equals(Buffer.from(b)),
    ),
  );
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (b) =>
      Buffer.from(rdataFromText(TYPE.AAAA, tokenize(rdataToText(TYPE.AAAA, b)), O)).equals(Buffer.from(b)),
    ),
  );
  fc.assert(
    fc.property(fc.nat(65535), fc.array(label, { minLength: 1, maxLength: 4 }), (pref, labels) => {
      const w = rdataFromText(TYPE.MX, tokenize(`${pref} ${labels.join('.')}.`), O);
      return Buffer.from(rdataFromText(TYPE.MX, tokenize(rdataToText(TYPE.MX, w)), O)).equals(Buffer.from(w));
    }),
  );
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 255 }), { minLength: 1, maxLength: 4 }), (strings) => {
      const w = Uint8Array.from(strings.flatMap((s) => [s.length, ...s]));
      return Buffer.from(rdataFromText(TYPE.TXT, tokenize(rdataToText(TYPE.TXT, w)), O)).equals(
        Buffer.from(w),
      );
    }),
  );
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), (b) =>
      Buffer.from(rdataFromText(65000, tokenize(rdataToText(65000, b)), O)).equals(Buffer.from(b)),
    ),
  );
  tt.pass('five properties held over 100 runs each');
  tt.end();
});

t.test(
  'A: dotted quads exactly as strict as node:net isIPv4 (the fast path and the general one agree)',
  (tt) => {
    tt.equal(enc(TYPE.A, '192.0.2.1'), 'c0000201');
    tt.equal(enc(TYPE.A, '0.0.0.0'), '00000000');
    tt.equal(enc(TYPE.A, '255.255.255.255'), 'ffffffff');
    tt.equal(enc(TYPE.A, '10.20.0.99'), '0a140063');
    for (const bad of [
      '192.0.2',
      '192.0.2.1.5',
      '192.0.2.256',
      '192.0.02.1',
      '192..2.1',
      '192.0.2.',
      'a.b.c.d',
      '1.2.3.-4',
    ]) {
      tt.throws(() => enc(TYPE.A, bad), /not an IPv4 address|unexpected/, `"${bad}" is refused`);
    }
    fc.assert(
      fc.property(
        fc.ipV4(),
        (ip) => enc(TYPE.A, ip) === Buffer.from(ip.split('.').map(Number)).toString('hex'),
      ),
    );
    tt.end();
  },
);

t.test('RFC 1035 §5.1 escapes in RDATA text: \\DDD is exactly three digits, \\X one character', (tt) => {
  // "A" is 0x41 = \065; a length octet then the bytes (RFC 1035 §3.3.14).
  tt.equal(enc(TYPE.TXT, '"\\065b"'), '024162');
  tt.equal(enc(TYPE.TXT, '"a\\"b"'), '03612262');
  for (const bad of ['"a\\1x"', '"a\\12"', '"\\256"']) {
    tt.throws(() => enc(TYPE.TXT, bad), { code: 'POPDNS_E_RDATA' }, `${bad} refused`);
  }
  // Text keeps UTF-8: an escaped or plain non-ASCII character is its UTF-8 bytes, astral ones too.
  tt.equal(enc(TYPE.TXT, '"\\ü"'), '02c3bc');
  tt.equal(enc(TYPE.TXT, '"😀"'), '04f09f9880');
  tt.end();
});
