/**
 * The Grafana dashboard and the alert rules against a real Prometheus: it scrapes a running
 * `popdns serve` (one signed zone) and `popdns health`; every PromQL expression of
 * deploy/grafana/popdns.json and deploy/prometheus/alerts.yml must parse and return at least one
 * series. `promtool check rules` and `promtool test rules` (one test file per alert) must pass.
 */
import { copyFileSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { parse } from 'yaml';
import { buildQuery, udpExchange } from '../helpers/dns.js';
import { freePort, needTool, startPopdns, startProcess, tmpDir } from '../helpers/peers.js';
import { spawnSync } from '../helpers/spawn.js';

const ZONE =
  '$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hm 1 3600 900 604800 60\n@ NS ns1\nns1 A 192.0.2.1\nwww A 192.0.2.80\n';

interface Panel {
  title?: string;
  targets?: { expr?: string }[];
  panels?: Panel[];
}

/** Every expression in the dashboard, with Grafana's variables replaced as Grafana would. */
function dashboardExprs(): { where: string; expr: string }[] {
  const d = JSON.parse(readFileSync('deploy/grafana/popdns.json', 'utf8')) as {
    panels: Panel[];
    templating: { list: { name: string; query?: unknown; definition?: string }[] };
  };
  const out: { where: string; expr: string }[] = [];
  const visit = (p: Panel): void => {
    for (const tg of p.targets ?? []) if (tg.expr) out.push({ where: `panel "${p.title}"`, expr: tg.expr });
    for (const c of p.panels ?? []) visit(c);
  };
  for (const p of d.panels) visit(p);
  for (const v of d.templating.list) {
    const m = /^label_values\((.*), *\w+\)$/.exec(v.definition ?? '');
    if (m) out.push({ where: `variable ${v.name}`, expr: m[1]! });
  }
  return out.map(({ where, expr }) => ({
    where,
    expr: expr.replaceAll('$instance', '.*').replaceAll('$__rate_interval', '1m'),
  }));
}

function ruleExprs(): { alert: string; expr: string }[] {
  const doc = parse(readFileSync('deploy/prometheus/alerts.yml', 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  return doc.groups.flatMap((g) => g.rules.map((r) => ({ alert: r.alert, expr: r.expr })));
}

t.test('promtool check rules and promtool test rules (one test file per alert)', (t) => {
  if (!needTool(t, 'promtool', 'prometheus')) return t.end();
  const check = spawnSync('promtool', ['check', 'rules', 'deploy/prometheus/alerts.yml'], { encoding: 'utf8' });
  t.equal(check.status, 0, `promtool check rules: ${check.stdout}${check.stderr}`);
  const tests = readdirSync('deploy/prometheus/tests').filter((f) => f.endsWith('.yml'));
  const tested = new Set(
    tests.flatMap((f) =>
      [...readFileSync(join('deploy/prometheus/tests', f), 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]),
    ),
  );
  for (const { alert } of ruleExprs()) t.ok(tested.has(alert), `${alert} has a unit test`);
  const run = spawnSync('promtool', ['test', 'rules', ...tests], {
    cwd: 'deploy/prometheus/tests',
    encoding: 'utf8',
  });
  t.equal(run.status, 0, `promtool test rules: ${run.stdout}${run.stderr}`);
  t.end();
});

t.test('every dashboard and alert expression returns series from a real Prometheus', async (t) => {
  if (!needTool(t, 'prometheus', 'prometheus')) return;
  const dir = tmpDir(t);
  const zones = join(dir, 'zones');
  const keys = join(dir, 'keys');
  mkdirSync(zones);
  writeFileSync(join(zones, 'example.test.zone'), ZONE);
  const kg = spawnSync(process.execPath, ['dist/cli.js', 'keygen', 'example.test', '--keys', keys], {
    encoding: 'utf8',
  });
  t.equal(kg.status, 0, kg.stderr);
  const srv = await startPopdns(t, zones, ['--keys', keys, '--workers', '1', '--control', 'off']);
  for (let i = 0; i < 5; i++) await udpExchange(srv.port, buildQuery('www.example.test.', 'A'));
  await udpExchange(srv.port, buildQuery('nope.invalid.', 'A'));

  // The probe: no BIRD here, so its prefix reads -1 (BIRD out of sync): a series all the same.
  const healthPort = await freePort();
  const healthCfg = join(dir, 'pop.yaml');
  writeFileSync(
    healthCfg,
    [
      `zones: ${zones}`,
      `listen: [127.0.0.1:${srv.port}]`,
      `metrics: 127.0.0.1:${srv.metricsPort}`,
      'health:',
      '  interval: 500ms',
      '  timeout: 400ms',
      '  maintenance-file: false',
      `  bird-socket: ${join(dir, 'bird.ctl')}`,
      `  state-file: ${join(dir, 'anycast.conf')}`,
      '  prefixes: [{ prefix: 198.51.100.0/24, protocol: anycast4 }]',
      `  metrics: 127.0.0.1:${healthPort}`,
      '',
    ].join('\n'),
  );
  await startProcess(t, process.execPath, ['dist/cli.js', 'health', '--config', healthCfg], (o) =>
    o.includes('probing'),
  );

  const promPort = await freePort();
  copyFileSync('deploy/prometheus/alerts.yml', join(dir, 'alerts.yml'));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    [
      'global: { scrape_interval: 1s, evaluation_interval: 1s }',
      'rule_files: [alerts.yml]',
      'scrape_configs:',
      `  - { job_name: popdns, static_configs: [{ targets: ["127.0.0.1:${srv.metricsPort}"] }] }`,
      `  - { job_name: popdns-health, static_configs: [{ targets: ["127.0.0.1:${healthPort}"] }] }`,
      '',
    ].join('\n'),
  );
  await startProcess(
    t,
    'prometheus',
    [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    (o) => o.includes('Server is ready to receive web requests'),
    60000,
  );
  const api = `http://127.0.0.1:${promPort}/api/v1`;
  const query = async (expr: string): Promise<{ status: string; error?: string; data?: { result: unknown[] } }> => {
    const r = await fetch(`${api}/query?query=${encodeURIComponent(expr)}`);
    return (await r.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  };

  // Two scrapes of each target (bounded wait).
  const deadline = Date.now() + 60000;
  for (;;) {
    const r = await query('min by (job) (count_over_time(up[5m])) >= 2 and min by (job) (up) == 1');
    if ((r.data?.result.length ?? 0) === 2) break;
    if (Date.now() > deadline) {
      t.fail(`Prometheus did not scrape both targets twice: ${JSON.stringify((await query('up')).data)}`);
      return;
    }
    await new Promise((res) => setTimeout(res, 500));
  }

  for (const { where, expr } of dashboardExprs()) {
    const r = await query(expr);
    t.equal(r.status, 'success', `${where}: ${expr} parses${r.error ? `: ${r.error}` : ''}`);
    t.ok((r.data?.result.length ?? 0) >= 1, `${where}: ${expr} returns series`);
  }
  for (const { alert, expr } of ruleExprs()) {
    const full = await query(expr);
    t.equal(full.status, 'success', `${alert}: ${expr} parses${full.error ? `: ${full.error}` : ''}`);
    // A healthy PoP fires nothing: the measure before the threshold must find the series.
    const measure = expr.replace(/\s*(==|!=|<=|>=|<|>)\s*[-0-9.*\s]+$/, '');
    t.not(measure, expr, `${alert}: the threshold comes last`);
    const r = await query(measure);
    t.ok((r.data?.result.length ?? 0) >= 1, `${alert}: ${measure} returns series`);
  }
  const rules = (await (await fetch(`${api}/rules`)).json()) as {
    data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
  };
  const loaded = rules.data.groups.flatMap((g) => g.rules);
  t.equal(loaded.length, ruleExprs().length, 'Prometheus loaded every rule');
  for (const r of loaded) t.equal(r.health, 'ok', `${r.name} evaluates${r.lastError ? `: ${r.lastError}` : ''}`);
});
