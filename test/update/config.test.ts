/** The `updates:` config: the documented example (deploy/popdns.yaml) and clear errors with line:col. */
import t from 'tap';
import { defaultConfig, loadConfigFile, parseConfig } from '../../src/server/config.js';
import { TYPE } from '../../src/wire/constants.js';

const KEYS = `tsig-keys:
  acme.example.com: { algorithm: hmac-sha256, secret: "YWNtZS1hY21lLWFjbWUtYWNtZS1hY21lLWFjbWUtYWM=" }
`;

t.test('deploy/popdns.yaml documents updates:', (tt) => {
  const cfg = loadConfigFile('deploy/popdns.yaml', defaultConfig('test', 2));
  const rules = cfg.updates.get('example.net.');
  tt.ok(rules, 'example.net has a policy');
  tt.equal(rules![0]!.key, 'acme.example.net.');
  tt.same(rules![0]!.names, [['_acme-challenge'], ['_acme-challenge', '*']]);
  tt.same([...rules![0]!.types!], [TYPE.TXT]);
  tt.equal(rules![1]!.names, null);
  tt.equal(rules![1]!.types, null);
  tt.end();
});

t.test('the issue example parses; errors name the line', (tt) => {
  const base = defaultConfig('test', 2);
  const cfg = parseConfig(
    `updates:
  example.com:
    - { key: acme.example.com, names: ["_acme-challenge", "_acme-challenge.*"], types: [TXT] }
${KEYS}`,
    'c.yaml',
    base,
  );
  tt.equal(cfg.updates.get('example.com.')![0]!.key, 'acme.example.com.', 'keys may be listed after updates');
  tt.throws(
    () => parseConfig(`updates:\n  example.com:\n    - { key: nope }\n${KEYS}`, 'c.yaml', base),
    /c\.yaml:3:7: error: key nope\. of updates\.example\.com is not in tsig-keys/,
  );
  tt.throws(
    () =>
      parseConfig(
        `updates:\n  example.com:\n    - { key: acme.example.com, types: [BOGUS] }\n${KEYS}`,
        'c.yaml',
        base,
      ),
    /c\.yaml:3:40: error: updates\.example\.com\.types: unknown type "BOGUS"/,
  );
  tt.throws(
    () => parseConfig(`updates:\n  example.com:\n    - { names: [x] }\n${KEYS}`, 'c.yaml', base),
    /needs key/,
  );
  tt.throws(
    () =>
      parseConfig(
        `updates:\n  example.com:\n    - { key: acme.example.com, names: [x.example.com.] }\n${KEYS}`,
        'c.yaml',
        base,
      ),
    /relative/,
  );
  tt.throws(
    () =>
      parseConfig(
        `updates:\n  example.com:\n    - { key: acme.example.com, name: [x] }\n${KEYS}`,
        'c.yaml',
        base,
      ),
    /unknown updates setting "name"/,
  );
  tt.end();
});
