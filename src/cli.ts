#!/usr/bin/env node
/** The `popdns` command line. Subcommand names and flags are a contract other tools depend on. */
import { Command, InvalidArgumentError } from 'commander';
import type { CheckOptions } from './cli/check.js';
import { commandDetail } from './cli/help.js';
import * as log from './log/log.js';
import { VERSION } from './version.js';

// Each command's module is imported when that command runs, so `popdns ctl`, `popdns health
// --once` or `--version` do not load the server, the zone parsers and the signer first (a few
// hundred ms of CPU per start). The ctl verbs' help needs the registry: loaded only for ctl.
const ctlVerbsHelp = process.argv.includes('ctl')
  ? (await import('./cli/ctl.js')).ctlVerbsHelp
  : (): string => '';

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number ≥ 1');
  return n;
}

const program = new Command();
program
  .name('popdns')
  .helpCommand(false)
  .description('Authoritative DNS server for anycast points of presence')
  .version(VERSION)
  // Usage errors (unknown option, bad flag value) exit 2, like a bad config; --help and --version 0.
  .exitOverride((e) => {
    process.exit(e.exitCode === 0 ? 0 : 2);
  });

program
  .command('serve')
  .description('serve the zones in a directory over UDP and TCP')
  .option('--config <file>', 'YAML config file (flags win over it)')
  .option('--zones <dir>', 'directory of zone files (default ./zones)')
  .option(
    '--listen <addr:port>',
    'listen address, repeatable; IPv6 in brackets (default 127.0.0.1:1053 and [::1]:1053)',
    collect,
  )
  .option('--identity <name>', 'server identity for CHAOS id.server and NSID (default: the host name)')
  .option('--metrics <addr:port>', 'metrics and health listener (default 127.0.0.1:9153)')
  .option('--workers <n>', 'worker processes (default: one per core)', positiveInt)
  .option('--keys <dir>', 'DNSSEC keys: every zone with keys here is signed (default ./keys)')
  .option('--control <path>', 'control socket for popdns ctl, or off (default: see popdns ctl --help)')
  .addHelpText(
    'after',
    `
Signals:
  SIGHUP   reload: re-read changed zone files; a file that fails keeps its previous version
           (popdns ctl reload does the same and reports the result per zone)
  SIGTERM  drain: /readyz turns 503 at once (the health probe withdraws the anycast prefix),
           answering continues for the drain period (drain:, default 5s), then exit 0;
           a second SIGTERM exits at once
  SIGINT   (Ctrl-C) exit at once, without a drain

Exit status:
  0  stopped by a signal (after the drain)
  1  could not start: a listener could not be bound, no zone loaded, metrics or control socket failed
  2  bad configuration or flags (file:line:col in the message)
`,
  )
  .action(async (opts) => {
    const { runServe } = await import('./cli/serve.js');
    await runServe(opts);
  });

program
  .command('check')
  .description('check zone files (or directories of them) exactly as the server loads them')
  .argument('[paths...]', 'zone files or directories (default: ./zones)')
  .option('--strict', 'warnings fail the check too')
  .option('-q, --quiet', 'print problems only: no list of good zones, no summary')
  .option(
    '--config <file>',
    'check what `serve --config FILE` would load: its zones, keys and dnssec settings',
  )
  .option('--keys <dir>', 'DNSSEC keys directory, as for serve (default ./keys)')
  .option('--origin <zone>', 'the zone name of the one file given (default: from the file name)')
  .option('--against <addr:port>', 'compare serials and content with a running server')
  .addHelpText(
    'after',
    '\nExit status: 0 no errors, 1 errors (or warnings with --strict, or no zone files).\n',
  )
  .action(async (paths: string[] | undefined, opts: CheckOptions) => {
    const { runCheck } = await import('./cli/check.js');
    process.exitCode = await runCheck(paths ?? [], opts);
  });

program
  .command('convert')
  .description('convert a zone between RFC 1035 master-file and popdns YAML format (by file extension)')
  .argument('<in>', 'input zone file (*.zone, *.db, *.yaml, *.yml)')
  .argument('<out>', 'output file, or - for standard output (with --to)')
  .option('--to <format>', 'output format: yaml or zone (default: from the output file name)')
  .option('--origin <zone>', 'the zone name (default: from the input file name, else its first $ORIGIN)')
  .action(async (input: string, output: string, opts: { to?: string; origin?: string }) => {
    const { runConvert } = await import('./cli/convert.js');
    process.exitCode = runConvert(input, output, opts);
  });

program
  .command('keygen')
  .description('generate a DNSSEC key for a zone (BIND key files: K<zone>.+<alg>+<tag>.key and .private)')
  .argument('<zone>', 'zone name')
  .option('--keys <dir>', 'keys directory, created with mode 0700 (default ./keys)')
  .option('--algorithm <alg>', 'ecdsap256sha256 (default), ed25519 or rsasha256')
  .option('--role <role>', 'csk (default), ksk or zsk')
  .action(async (zone: string, opts: { keys?: string; algorithm?: string; role?: string }) => {
    const { runKeygen } = await import('./cli/keygen.js');
    process.exitCode = runKeygen(zone, opts);
  });

program
  .command('tsig-keygen')
  .description(
    'generate a TSIG key (RFC 8945): printed as a popdns tsig-keys entry and as BIND\'s key "NAME" { … };',
  )
  .argument('<name>', 'key name, e.g. xfr.example.net')
  .option('--algorithm <alg>', 'hmac-sha256 (default), hmac-sha384, hmac-sha512 or hmac-sha1')
  .action(async (name: string, opts: { algorithm?: string }) => {
    const { runTsigKeygen } = await import('./cli/tsigkeygen.js');
    process.exitCode = runTsigKeygen(name, opts);
  });

program
  .command('ds')
  .description("print the DS (SHA-256) and DNSKEY records of the zone's key-signing keys, for the parent")
  .argument('<zone>', 'zone name')
  .option('--keys <dir>', 'keys directory (default ./keys)')
  .action(async (zone: string, opts: { keys?: string }) => {
    const { runDs } = await import('./cli/ds.js');
    process.exitCode = runDs(zone, opts);
  });

program
  .command('sign')
  .description('sign a zone file with its keys and write the signed zone as an RFC 1035 file')
  .argument('<zonefile>', 'zone file (*.yaml, *.yml, *.zone, *.db), loaded exactly as the server loads it')
  .requiredOption('--out <file>', 'signed zone file to write, or - for standard output')
  .option('--keys <dir>', 'keys directory (default ./keys)')
  .option('--nsec3', 'NSEC3 (RFC 5155; no extra iterations, no salt) instead of NSEC')
  .option('--opt-out', 'NSEC3 opt-out: insecure delegations get no NSEC3 (needs --nsec3)')
  .option('--validity <period>', 'signature validity, seconds or units like 14d, 2w (default 14d)')
  .option('--cds', 'publish CDS and CDNSKEY for the key-signing keys (RFC 7344, RFC 8078)')
  .option('--threads <n>', 'signing threads (default: the cores; 0: sign on the main thread)')
  .action(
    async (
      zonefile: string,
      opts: {
        out: string;
        keys?: string;
        nsec3?: boolean;
        optOut?: boolean;
        validity?: string;
        cds?: boolean;
        threads?: string;
      },
    ) => {
      const { runSign } = await import('./cli/sign.js');
      process.exitCode = await runSign(zonefile, opts);
    },
  );

program
  .command('health')
  .description('probe the local server and announce or withdraw anycast prefixes in BIRD')
  .requiredOption('--config <file>', 'the PoP config file with its health: section (see deploy/popdns.yaml)')
  .option('--once', 'run one round of checks, print the verdict and exit 0 (healthy) or 1; BIRD untouched')
  .action(async (opts: { config: string; once?: boolean }) => {
    const { runHealth } = await import('./cli/health.js');
    await runHealth(opts);
  });

program
  .command('help')
  .description('the usage and the full description of a command (from docs/cli.md)')
  .argument('[command]', 'a popdns command')
  .action((name?: string) => {
    const cmd = name ? program.commands.find((c) => c.name() === name) : undefined;
    if (!name) return program.outputHelp();
    if (!cmd) {
      log.error('cli', `no command "${name}" (popdns --help lists them)`, { code: 'POPDNS_E_USAGE' });
      process.exitCode = 2;
      return;
    }
    cmd.outputHelp();
    const detail = commandDetail(name);
    if (detail) process.stdout.write(`\n${detail}\n`);
  });

program
  .command('ctl')
  .description('control a running popdns serve over its Unix socket (reload, status, zone-dump)')
  .argument('<command>', 'reload, status, zone-dump (see below)')
  .argument('[args...]', 'zone names')
  .option('--socket <path>', 'control socket (default: /run/popdns/popdns.sock when /run/popdns exists)')
  .option('--config <file>', 'take the socket path from this config file (control:)')
  .option('--json', 'print the answer as JSON')
  .option('--timeout <seconds>', 'give up after this long (default: wait for the answer)')
  .addHelpText(
    'after',
    () =>
      `\n${ctlVerbsHelp()}\nExit status: 0 done, 1 the command failed (e.g. a zone did not load), 2 bad usage or no server.\n`,
  )
  .action(
    async (
      command: string,
      args: string[],
      opts: { socket?: string; config?: string; json?: boolean; timeout?: string },
    ) => {
      const { runCtl } = await import('./cli/ctl.js');
      process.exitCode = await runCtl(command, args, opts);
    },
  );

program.parseAsync(process.argv).catch((e: unknown) => {
  log.error('cli', e instanceof Error ? e.message : String(e));
  process.exitCode = 1;
});
