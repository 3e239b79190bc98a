/**
 * `popdns ctl [--socket PATH] COMMAND [ARG…]`: talks to a running `popdns serve` over its control
 * socket, like knotc or nsd-control. Exit 0 when the command succeeded, 1 when it ran and failed
 * (a zone did not load), 2 when it could not run (bad usage, no server on the socket).
 */
import { availableParallelism } from 'node:os';
import { listVerbs } from '../ctl/index.js';
import { ctlRequest } from '../ctl/socket.js';
import * as log from '../log/log.js';
import { ConfigError, defaultConfig, loadConfigFile } from '../server/config.js';
import { defaultControlSocket } from '../server/control-path.js';
import { VERSION } from '../version.js';

export interface CtlFlags {
  socket?: string;
  config?: string;
  json?: boolean;
  timeout?: string;
}

/** The verbs, for `popdns ctl --help`. */
export function ctlVerbsHelp(): string {
  const rows = listVerbs().map((v) => [`${v.name} ${v.usage}`.trim(), v.summary] as const);
  const w = Math.max(...rows.map(([a]) => a.length));
  return `Commands:\n${rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n')}\n`;
}

/** Runs one control command; resolves with the exit code. */
export async function runCtl(command: string, args: string[], flags: CtlFlags): Promise<number> {
  let path = flags.socket;
  if (!path && flags.config) {
    try {
      const cfg = loadConfigFile(flags.config, defaultConfig(VERSION, availableParallelism()));
      if (!cfg.control) {
        log.error('ctl', `${flags.config} says control: false: the server has no control socket`, {
          code: 'POPDNS_E_CONTROL',
        });
        return 2;
      }
      path = cfg.control;
    } catch (e) {
      log.error('ctl', (e as Error).message);
      return e instanceof ConfigError ? 2 : 1;
    }
  }
  path ??= defaultControlSocket();
  const timeout = flags.timeout === undefined ? 0 : Number(flags.timeout);
  if (!Number.isFinite(timeout) || timeout < 0) {
    log.error('ctl', `--timeout must be seconds ≥ 0, not "${flags.timeout}"`, { code: 'POPDNS_E_USAGE' });
    return 2;
  }
  const r = await ctlRequest(path, { verb: command, args }, timeout * 1000);
  if ('error' in r) {
    log.error('ctl', r.error, { code: 'POPDNS_E_CONTROL' });
    return 2;
  }
  const out = r.reply;
  if (flags.json) process.stdout.write(`${JSON.stringify(out.data, null, 2)}\n`);
  else if (out.ok) process.stdout.write(out.text);
  // A failed command: its text goes to stderr as it is (it names zones and file:line:col), so
  // `systemctl reload` shows it in the journal.
  else process.stderr.write(out.text);
  if (out.usage) return 2;
  return out.ok ? 0 : 1;
}
