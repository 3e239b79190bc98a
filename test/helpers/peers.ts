/**
 * Helpers for tests that use real peers (knotd, dig, kdig, …) and real server processes. A missing tool
 * skips the test with a message saying what to install; with POPDNS_REQUIRE_PEERS=1 (set by .ci/run)
 * it fails instead, so CI never passes by skipping.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Test } from 'tap';
import { spawnSync } from './spawn.js';

export const REQUIRE_PEERS = process.env.POPDNS_REQUIRE_PEERS === '1';

// Every process a test starts (popdns and its workers, the CLI, peers) runs as in production: tap
// puts its process-info hook in NODE_OPTIONS for the children of a test, which costs each node start
// ~0.4 CPU-s and a file under .tap/, for coverage that is off. Tests spawn hundreds of node
// processes, so this is minutes of CI. (plainEnv() below also drops tap's own variables.)
delete process.env.NODE_OPTIONS;

export function hasTool(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** True if `cmd` is installed; otherwise skips (or fails, in CI) the test and returns false. */
export function needTool(t: Test, cmd: string, pkg: string): boolean {
  if (hasTool(cmd)) return true;
  if (REQUIRE_PEERS) t.fail(`${cmd} missing (Debian package ${pkg}) and POPDNS_REQUIRE_PEERS=1`);
  else t.skip(`${cmd} not installed — apt-get install ${pkg}`, () => {});
  return false;
}

/**
 * The ports tests give to servers: POPDNS_TEST_PORTS=LOW-HIGH (shared machines), else the 12k ports
 * just below the kernel's ephemeral range (net.ipv4.ip_local_port_range, 32768-60999 on Debian).
 * Never a port the kernel may pick as a client's source port: dig 9.18 and Unbound both set
 * SO_REUSEPORT, so a dig whose source port the kernel chose equal to Unbound's listening port received
 * its own query back (seen in CI as a "NOERROR with AD" that was no answer at all).
 */
function portRange(): [number, number] | null {
  const m = /^(\d+)-(\d+)$/.exec(process.env.POPDNS_TEST_PORTS ?? '');
  if (m) return [Number(m[1]), Number(m[2])];
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
  } catch {
    // no /proc (not Linux): Linux's default lower bound
  }
  return low > 3024 ? [Math.max(1024, low - 12_000), low - 1] : null;
}
const PORT_RANGE = portRange();

/** A port free on 127.0.0.1 for both UDP and TCP (bounded attempts), from portRange(). */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const want = PORT_RANGE
      ? PORT_RANGE[0] + Math.floor(Math.random() * (PORT_RANGE[1] - PORT_RANGE[0] + 1))
      : 0;
    const port = await new Promise<number>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(0));
      srv.listen(want, '127.0.0.1', () => {
        const a = srv.address();
        srv.close(() => resolve(typeof a === 'object' && a ? a.port : 0));
      });
    });
    if (port === 0) continue;
    const udpFree = await new Promise<boolean>((resolve) => {
      const s = createSocket('udp4');
      s.once('error', () => resolve(false));
      s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no free port found');
}

export function tmpDir(t: Test, prefix = 'popdns-test-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * The environment for the servers and tools a test starts: the test's own, minus tap's NODE_OPTIONS
 * loader and process-info variables, which would make every node child (popdns, its workers) load
 * tap's hooks — seconds per start on a loaded machine — for coverage that is off anyway.
 */
export function plainEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(process.env).filter(([k]) => k !== 'NODE_OPTIONS' && !/^(_TAPJS_|TAP)/.test(k)),
  );
}

export interface Proc {
  child: ChildProcess;
  output(): string;
}

/**
 * Spawns a process, waits (bounded) until `ready` says so, and stops it by PID at teardown: SIGTERM,
 * then SIGKILL after 2 s.
 */
export async function startProcess(
  t: Test,
  cmd: string,
  args: string[],
  ready: (output: string) => boolean | Promise<boolean>,
  timeoutMs = 30000,
): Promise<Proc> {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: plainEnv() });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  t.teardown(() => stopProcess(child));
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${cmd} exited with ${child.exitCode}:\n${out}`);
    if (await ready(out)) return { child, output: () => out };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${cmd} not ready after ${timeoutMs} ms:\n${out}`);
}

export function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 2000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts `popdns serve` (from dist/) on a free loopback port; resolves when every listener is up. */
export async function startPopdns(
  t: Test,
  zonesDir: string,
  extra: string[] = [],
): Promise<Proc & { port: number; metricsPort: number }> {
  const port = await freePort();
  const metricsPort = await freePort();
  const p = await startProcess(
    t,
    process.execPath,
    [
      'dist/cli.js',
      'serve',
      '--zones',
      zonesDir,
      '--listen',
      `127.0.0.1:${port}`,
      '--metrics',
      `127.0.0.1:${metricsPort}`,
      '--identity',
      'test-pop',
      ...extra,
    ],
    (o) => o.includes('ready:'),
  );
  return { ...p, port, metricsPort };
}
