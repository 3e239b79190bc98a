/**
 * Validating resolvers as test oracles: Unbound (stub zones pointing at a server under test, one
 * trust anchor) and delv, plus dig. Commands run without blocking the event loop, so the popdns under
 * test may run in the test's own process.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { freePort, type Proc, startProcess } from './peers.js';
import { spawnSync } from './spawn.js';

/** Runs a command (15 s at most) and resolves with its output, whatever its exit status. */
export function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 15000 }, (_e, stdout, stderr) =>
      resolve({ stdout, stderr }),
    );
  });
}

export interface Dig {
  /** The rcode; 'NO ANSWER' when nothing came back, NOT_A_RESPONSE for a message without QR. */
  status: string;
  /** The AD flag: the resolver validated the answer (never set on something that is not a response). */
  ad: boolean;
  out: string;
}

/** dig's status for a message it printed that has no QR flag: its own query, come back (see dig). */
export const NOT_A_RESPONSE = 'NOT A RESPONSE';

/** Reads dig's output: the rcode and the AD flag of the response it printed. */
export function readDig(out: string): Dig {
  const m = /;; flags:([a-z ]*);/.exec(out);
  if (!m) return { status: 'NO ANSWER', ad: false, out };
  const flags = m[1]!.trim().split(/\s+/);
  if (!flags.includes('qr')) return { status: NOT_A_RESPONSE, ad: false, out };
  const status = /status: (\w+)/.exec(out)?.[1] ?? 'NO ANSWER';
  return { status, ad: flags.includes('ad'), out };
}

/**
 * `dig +dnssec` at 127.0.0.1:port (`extra`: more dig arguments, after the others). dig (9.18) binds
 * its UDP socket to port 0 with SO_REUSEPORT, and Unbound's listening socket has SO_REUSEPORT too
 * (so-reuseport: yes, the default): for the same user, the kernel may choose, as dig's source port,
 * the very port Unbound listens on (1 dig in ~28,000 when that port is in the ephemeral range
 * 32768-60999, as it is without POPDNS_TEST_PORTS; shown with a 10-port range in a network
 * namespace: 9 digs in 60). The query then comes back to dig itself, which prints it as the answer
 * ("Warning: query response not set"): NOERROR, with the AD bit dig sets in its queries, no QR. Such
 * a message is never read as the resolver's response: dig asks again from a new port (3 tries), else
 * the status is NOT_A_RESPONSE.
 */
export async function dig(port: number, name: string, type: string, extra: string[] = []): Promise<Dig> {
  let d: Dig = { status: 'NO ANSWER', ad: false, out: '' };
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = await run('dig', [
      '@127.0.0.1',
      '-p',
      String(port),
      name,
      type,
      '+dnssec',
      '+time=5',
      '+tries=1',
      ...extra,
    ]);
    d = readDig(r.stdout + r.stderr);
    if (d.status !== NOT_A_RESPONSE) return d;
  }
  return d;
}

/**
 * Starts Unbound on a free loopback port as a validating resolver: `stubs` are zone names whose
 * queries go to 127.0.0.1@serverPort, `anchor` one trust anchor in presentation format (a DS or
 * DNSKEY record). Aggressive NSEC use and qname minimisation are off, so every answer is asked of the
 * server. Stopped at teardown.
 */
export async function startUnbound(
  t: Test,
  dir: string,
  serverPort: number,
  stubs: string[],
  anchor: string,
): Promise<Proc & { port: number }> {
  const port = await freePort();
  const conf = join(dir, 'unbound.conf');
  const tld = stubs[0]!.replace(/\.$/, '').split('.').pop()!;
  writeFileSync(
    conf,
    `server:
  interface: 127.0.0.1
  port: ${port}
  do-ip6: no
  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: "${dir}/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 0
  log-servfail: yes
  local-zone: "${tld}." nodefault
  do-not-query-localhost: no
  access-control: 127.0.0.0/8 allow
  module-config: "validator iterator"
  trust-anchor: "${anchor}"
  qname-minimisation: no
  aggressive-nsec: no
  target-fetch-policy: "0 0 0 0 0"
  val-log-level: 2
${stubs.map((s) => `stub-zone:\n  name: "${s}"\n  stub-addr: 127.0.0.1@${serverPort}\n`).join('')}remote-control:
  control-enable: no
`,
  );
  const check = spawnSync('unbound-checkconf', [conf], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`unbound-checkconf: ${check.stdout}${check.stderr}`);
  const p = await startProcess(t, 'unbound', ['-d', '-c', conf], async () => {
    const d = await dig(port, stubs[0]!, 'SOA');
    return d.status !== 'NO ANSWER' && d.status !== NOT_A_RESPONSE;
  });
  return { ...p, port };
}

/**
 * A delv runner against 127.0.0.1:serverPort with one static trust anchor for `zone` (`key` is a
 * DNSKEY RDATA in presentation format: flags protocol algorithm base64). The output says
 * "; fully validated" or "; negative response, fully validated" when delv validated the answer.
 */
export function delvWith(
  dir: string,
  serverPort: number,
  zone: string,
  key: string,
): (name: string, type: string) => Promise<string> {
  const anchor = join(dir, 'delv-anchor.conf');
  const [flags, proto, alg, ...b64] = key.trim().split(/\s+/);
  writeFileSync(
    anchor,
    `trust-anchors {\n  "${zone}" static-key ${flags} ${proto} ${alg} "${b64.join('')}";\n};\n`,
  );
  const root = zone.replace(/\.$/, '');
  return async (name, type) => {
    const r = await run('delv', [
      '@127.0.0.1',
      '-p',
      String(serverPort),
      '-a',
      anchor,
      `+root=${root}`,
      name,
      type,
    ]);
    return r.stdout + r.stderr;
  };
}
