import fc from 'fast-check';
import t from 'tap';
import {
  canonicalCompare,
  isSubdomainOf,
  labelCount,
  NameError,
  nameEquals,
  nameFromText,
  nameKey,
  nameToRelativeText,
  nameToText,
  readName,
  replaceSuffix,
} from '../../src/wire/name.js';

const bytes = (...a: (number | string)[]): Uint8Array =>
  Uint8Array.from(a.flatMap((x) => (typeof x === 'number' ? [x] : [...x].map((c) => c.charCodeAt(0)))));

t.test('presentation → wire (RFC 1035 §3.1, §5.1)', (tt) => {
  tt.same(nameFromText('www.Example.com.'), bytes(3, 'www', 7, 'Example', 3, 'com', 0));
  tt.same(nameFromText('.'), bytes(0));
  const origin = nameFromText('example.com.');
  tt.same(nameFromText('www', origin), bytes(3, 'www', 7, 'example', 3, 'com', 0));
  tt.same(nameFromText('@', origin), origin);
  tt.same(
    nameFromText('a\\.b.example.com.'),
    bytes(3, 'a.b', 7, 'example', 3, 'com', 0),
    '\\. is a dot inside a label',
  );
  tt.same(nameFromText('\\065\\000x.'), bytes(3, 'A', 0, 'x', 0), '\\DDD is a decimal byte');
  tt.same(nameFromText('\\\\.'), bytes(1, '\\', 0));
  tt.throws(() => nameFromText('www'), { code: 'POPDNS_E_NAME' }, 'relative name without origin');
  tt.throws(() => nameFromText('a..b.'), { code: 'POPDNS_E_NAME' }, 'empty label');
  tt.throws(() => nameFromText(`${'a'.repeat(64)}.`), /63/, 'label over 63 octets');
  tt.doesNotThrow(() => nameFromText(`${'a'.repeat(63)}.`));
  const l63 = 'a'.repeat(63);
  // 4 × 63-octet labels = 4 × 64 + 1 = 257 octets
  tt.throws(() => nameFromText(`${l63}.${l63}.${l63}.${l63}.`), /255/);
  // 3 × 64 + 62 + 1 = 255 octets: the longest legal name
  tt.equal(nameFromText(`${l63}.${l63}.${l63}.${'b'.repeat(61)}.`).length, 255);
  tt.throws(() => nameFromText('\\256.'), /range/);
  tt.throws(() => nameFromText('a\\'), /backslash/);
  tt.end();
});

t.test('wire → presentation escapes specials and non-printables', (tt) => {
  tt.equal(nameToText(bytes(3, 'a.b', 3, 'com', 0)), 'a\\.b.com.');
  tt.equal(nameToText(bytes(2, 'a', 0, 0)), 'a\\000.');
  tt.equal(nameToText(bytes(3, 'a b', 0)), 'a\\032b.');
  tt.equal(nameToText(bytes(1, '"', 1, ';', 1, '(', 0)), '\\".\\;.\\(.');
  tt.equal(nameToText(bytes(0)), '.');
  const origin = nameFromText('example.com.');
  tt.equal(nameToRelativeText(nameFromText('www.example.com.'), origin), 'www');
  tt.equal(nameToRelativeText(nameFromText('EXAMPLE.com.'), origin), '@');
  tt.equal(nameToRelativeText(nameFromText('example.net.'), origin), 'example.net.');
  tt.equal(
    nameToRelativeText(nameFromText('xexample.com.'), origin),
    'xexample.com.',
    'label boundary respected',
  );
  tt.end();
});

t.test('case-insensitive comparison (RFC 4343) and subdomains', (tt) => {
  tt.ok(nameEquals(nameFromText('WWW.example.COM.'), nameFromText('www.EXAMPLE.com.')));
  tt.equal(nameKey(nameFromText('WWW.example.COM.')), nameKey(nameFromText('www.EXAMPLE.com.')));
  tt.notOk(nameEquals(nameFromText('a.'), nameFromText('b.')));
  tt.ok(isSubdomainOf(nameFromText('a.b.example.'), nameFromText('Example.')));
  tt.ok(isSubdomainOf(nameFromText('example.'), nameFromText('example.')));
  tt.notOk(isSubdomainOf(nameFromText('xexample.'), nameFromText('example.')), 'not on a label boundary');
  tt.ok(isSubdomainOf(nameFromText('anything.'), nameFromText('.')));
  tt.equal(labelCount(nameFromText('a.b.c.')), 3);
  tt.equal(labelCount(nameFromText('.')), 0);
  tt.same(
    replaceSuffix(
      nameFromText('a.b.d.example.org.'),
      nameFromText('d.example.org.'),
      nameFromText('example.net.'),
    ),
    nameFromText('a.b.example.net.'),
  );
  tt.end();
});

t.test('canonical order: the RFC 4034 §6.1 example', (tt) => {
  const ordered = [
    'example.',
    'a.example.',
    'yljkjljk.a.example.',
    'Z.a.example.',
    'zABC.a.EXAMPLE.',
    'z.example.',
    '\\001.z.example.',
    '*.z.example.',
    '\\200.z.example.',
  ].map((s) => nameFromText(s));
  const shuffled = [...ordered].reverse();
  shuffled.sort(canonicalCompare);
  tt.same(shuffled.map(nameToText), ordered.map(nameToText));
  tt.end();
});

t.test('readName: compression is bounded (RFC 1035 §4.1.4)', (tt) => {
  // header (12 bytes) + "example.com" at 12, then "www" + pointer to 12 at 25
  const msg = bytes(...new Array(12).fill(0), 7, 'example', 3, 'com', 0, 3, 'www', 0xc0, 12);
  const r = readName(msg, 25);
  tt.same(r.name, nameFromText('www.example.com.'));
  tt.equal(r.next, 31);
  tt.throws(() => readName(bytes(...new Array(12).fill(0), 0xc0, 12), 12), /backwards/, 'pointer to itself');
  tt.throws(() => readName(bytes(...new Array(12).fill(0), 0xc0, 14, 0), 12), /backwards/, 'forward pointer');
  tt.throws(() => readName(bytes(...new Array(12).fill(0), 5, 'ab'), 12), /past the end/);
  tt.throws(() => readName(bytes(...new Array(12).fill(0), 0x40, 0), 12), /label type/);
  tt.throws(() => readName(bytes(...new Array(12).fill(0), 0xc0), 12), /truncated/);
  tt.end();
});

t.test(
  'property: text → wire → text → wire is stable; readName never throws anything but NameError',
  (tt) => {
    const label = fc.uint8Array({ minLength: 1, maxLength: 20 });
    fc.assert(
      fc.property(fc.array(label, { minLength: 0, maxLength: 6 }), (labels) => {
        const wire = Uint8Array.from([...labels.flatMap((l) => [l.length, ...l]), 0]);
        const text = nameToText(wire);
        const again = nameFromText(text);
        return Buffer.from(again).equals(Buffer.from(wire));
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(80), (buf, off) => {
        try {
          const r = readName(buf, off);
          return r.name.length <= 255 && r.next > off;
        } catch (e) {
          return e instanceof NameError;
        }
      }),
    );
    tt.pass('both properties held over the default 100 runs each');
    tt.end();
  },
);
