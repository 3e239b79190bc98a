/** The log format: one line per event, text or JSON, with timestamp, level, component and code. */
import t from 'tap';
import { configureLog, error, formatRecord, info, parseLogFormat, warn } from '../../src/log/log.js';

const at = Date.UTC(2026, 10, 30, 8, 31, 59, 123);

t.test('text: timestamp, level, component, message, fields, code last', (t) => {
  t.equal(
    formatRecord(
      {
        time: at,
        level: 'info',
        component: 'server',
        msg: 'zone example.com. loaded',
        fields: { serial: 2, records: 32, source: 'zones/a b.zone' },
      },
      'text',
    ),
    '2026-11-30T08:31:59.123Z info server: zone example.com. loaded serial=2 records=32 source="zones/a b.zone"\n',
  );
  t.equal(
    formatRecord(
      {
        time: at,
        level: 'error',
        component: 'server',
        msg: 'cannot read zones',
        fields: { code: 'POPDNS_E_ZONES_DIR' },
      },
      'text',
    ),
    '2026-11-30T08:31:59.123Z error server: cannot read zones [POPDNS_E_ZONES_DIR]\n',
  );
  t.equal(
    formatRecord(
      {
        time: at,
        level: 'error',
        component: 'cli',
        msg: 'bad [POPDNS_E_X] thing',
        fields: { serial_old: null },
      },
      'text',
    ),
    '2026-11-30T08:31:59.123Z error cli: bad thing [POPDNS_E_X]\n',
    'a code written in the message moves to the end; null fields are left out',
  );
  t.equal(
    formatRecord({ time: at, level: 'warn', component: 'x', msg: 'two\nlines', fields: {} }, 'text'),
    '2026-11-30T08:31:59.123Z warn x: two\\nlines\n',
    'one event, one line',
  );
  t.end();
});

t.test('json: one object per line, code from the fields or the message', (t) => {
  const line = formatRecord(
    {
      time: at,
      level: 'error',
      component: 'server',
      msg: 'x.zone:3:1: error: bad [POPDNS_E_RDATA]',
      fields: { worker: 1 },
    },
    'json',
  );
  t.ok(line.endsWith('}\n') && !line.slice(0, -1).includes('\n'));
  t.same(JSON.parse(line), {
    time: '2026-11-30T08:31:59.123Z',
    level: 'error',
    component: 'server',
    msg: 'x.zone:3:1: error: bad',
    code: 'POPDNS_E_RDATA',
    worker: 1,
  });
  t.end();
});

t.test('levels, context and the sink', (t) => {
  const got: string[] = [];
  configureLog({ format: 'json', level: 'warn', context: { worker: 3 }, write: (l) => got.push(l) });
  info('server', 'not written');
  warn('server', 'written', { code: 'POPDNS_W_X' });
  error('server', 'also', { worker: 9 });
  t.equal(got.length, 2);
  t.match(JSON.parse(got[0]!), { level: 'warn', code: 'POPDNS_W_X', worker: 3 });
  t.match(JSON.parse(got[1]!), { level: 'error', worker: 9 }, 'a field wins over the context');
  t.equal(parseLogFormat('json'), 'json');
  t.equal(parseLogFormat('xml'), undefined);
  t.end();
});

t.test('an error whose stable code is a warning (POPDNS_W_*) is written at warn', (t) => {
  const got: string[] = [];
  configureLog({ format: 'json', level: 'info', context: {}, write: (l) => got.push(l) });
  error('server', 'xfr refused: zone a. peer 192.0.2.1 [POPDNS_W_XFR_REFUSED]');
  error('server', 'refused', { code: 'POPDNS_W_XFR_TSIG' });
  error('server', 'broken [POPDNS_E_ZONE_LOAD]');
  t.same(
    got.map((l) => (JSON.parse(l) as { level: string }).level),
    ['warn', 'warn', 'error'],
  );
  t.end();
});
