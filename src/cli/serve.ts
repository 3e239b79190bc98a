/** `popdns serve`: load the config, start the server, reload on SIGHUP, drain on SIGTERM. */
import { availableParallelism } from 'node:os';
import { startMetricsServer } from '../metrics/metrics.js';
import { ConfigError, defaultConfig, loadConfigFile, type ServerConfig } from '../server/config.js';
import { formatListen, parseListen } from '../server/listen.js';
import { PopdnsServer } from '../server/server.js';
import { VERSION } from '../version.js';

export interface ServeFlags {
  config?: string;
  zones?: string;
  listen?: string[];
  identity?: string;
  metrics?: string;
  workers?: number;
}

/** Defaults, then the config file, then flags. */
export function resolveConfig(flags: ServeFlags): ServerConfig {
  let cfg = defaultConfig(VERSION, availableParallelism());
  if (flags.config) cfg = loadConfigFile(flags.config, cfg);
  if (flags.zones) cfg.zones = flags.zones;
  if (flags.listen && flags.listen.length > 0) {
    cfg.listen = flags.listen.map(parseListen);
    cfg.listenDefault = false;
  }
  if (flags.identity) {
    if (cfg.nsid === cfg.identity) cfg.nsid = flags.identity;
    cfg.identity = flags.identity;
  }
  if (flags.metrics) cfg.metrics = flags.metrics === 'off' ? null : parseListen(flags.metrics);
  if (flags.workers) cfg.workers = flags.workers;
  return cfg;
}

export async function runServe(flags: ServeFlags): Promise<void> {
  let cfg: ServerConfig;
  try {
    cfg = resolveConfig(flags);
  } catch (e) {
    process.stderr.write(`popdns: ${(e as Error).message}\n`);
    process.exitCode = e instanceof ConfigError ? 2 : 1;
    return;
  }
  const server = new PopdnsServer(cfg);
  try {
    await server.start();
  } catch (e) {
    process.stderr.write(`popdns: ${(e as Error).message}\n`);
    await server.close();
    process.exit(1);
  }
  let draining = false;
  if (cfg.metrics) {
    try {
      await startMetricsServer(cfg.metrics.host, cfg.metrics.port, {
        version: VERSION,
        collect: () => ({
          counters: server.counters.snapshot(),
          zones: server.zones(),
          reloads: server.reloads,
        }),
        ready: () => server.ready,
        draining: () => draining,
      });
      process.stdout.write(`metrics http://${formatListen(cfg.metrics)}/metrics\n`);
    } catch (e) {
      process.stderr.write(
        `popdns: cannot serve metrics on ${formatListen(cfg.metrics)}: ${(e as Error).message} [POPDNS_E_LISTEN]\n`,
      );
      await server.close();
      process.exit(1);
    }
  }
  process.stdout.write(`ready: identity ${cfg.identity}, ${server.handler.zones.zones.length} zones\n`);
  process.on('SIGHUP', () => {
    server.reload();
  });
  const drain = (sig: string): void => {
    if (draining) {
      process.stderr.write(`popdns: ${sig} again: stopping now\n`);
      process.exit(0);
    }
    draining = true;
    server.draining = true;
    process.stdout.write(`popdns: ${sig}: draining for ${cfg.drainSeconds}s (readyz 503, still answering)\n`);
    setTimeout(() => {
      void server.close().then(() => {
        process.stdout.write('popdns: drained, exiting\n');
        process.exit(0);
      });
    }, cfg.drainSeconds * 1000);
  };
  process.on('SIGTERM', () => drain('SIGTERM'));
  process.on('SIGINT', () => drain('SIGINT'));
}
