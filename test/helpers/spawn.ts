/**
 * `spawnSync` for tests, bounded: every call gets a timeout (60 s unless the caller gives one) and is
 * killed with SIGKILL when it runs out. A synchronous spawn blocks the test's event loop, so a child
 * that never ends would otherwise hold the whole test file until tap's per-file timeout, which reports
 * only "timeout!" and not which command hung. Here the call returns (status null, `error.code`
 * ETIMEDOUT), the assertion on its status fails, and stderr names the command and lists the processes
 * that were running at that moment.
 */
import * as cp from 'node:child_process';

/** The bound for a call that gives no `timeout` of its own, in milliseconds. */
export const SPAWN_SYNC_TIMEOUT_MS = 60_000;

export function spawnSync(
  command: string,
  args: readonly string[],
  options: cp.SpawnSyncOptionsWithStringEncoding,
): cp.SpawnSyncReturns<string>;
export function spawnSync(
  command: string,
  args?: readonly string[],
  options?: cp.SpawnSyncOptionsWithBufferEncoding | cp.SpawnSyncOptions,
): cp.SpawnSyncReturns<Buffer>;
export function spawnSync(
  command: string,
  args: readonly string[] = [],
  options: cp.SpawnSyncOptions = {},
): cp.SpawnSyncReturns<string | Buffer> {
  const timeout = options.timeout ?? SPAWN_SYNC_TIMEOUT_MS;
  const r = cp.spawnSync(command, args, { killSignal: 'SIGKILL', ...options, timeout });
  if ((r.error as NodeJS.ErrnoException | undefined)?.code === 'ETIMEDOUT') {
    const ps = cp.spawnSync('ps', ['-eo', 'pid,ppid,etimes,stat,args', '--forest'], {
      encoding: 'utf8',
      timeout: 5000,
    });
    process.stderr.write(
      `# spawnSync: \`${command} ${args.join(' ')}\` did not end within ${timeout / 1000} s and was killed.\n` +
        `# processes at that moment:\n${(ps.stdout ?? '').replace(/^/gm, '#   ')}\n`,
    );
  }
  return r;
}
