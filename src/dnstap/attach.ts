/** Attaches the dnstap writer to a server process (the single server, or each worker). */
import type { ServerConfig } from '../server/config.js';
import type { PopdnsServer } from '../server/server.js';
import { Dnstap, type DnstapLogger } from './dnstap.js';

/** Gives `server` its own dnstap connection when `dnstap:` is configured; call before server.start(). */
export function attachDnstap(server: PopdnsServer, cfg: ServerConfig, log: DnstapLogger): void {
  if (cfg.dnstap === null) return;
  server.dnstap = new Dnstap(
    cfg.dnstap,
    { identity: cfg.identity, version: cfg.version ?? 'popdns' },
    server.counters.dnstap,
    log,
  );
}
