/**
 * A client for BIRD's control socket (the protocol birdc speaks; BIRD documents it as stable).
 * The server speaks first (`0001 BIRD 2.0.12 ready.`); each command is one line; each reply line is
 * `DDDD-text` (more follows), ` text` (continuation, same code) or `DDDD text` (the last line).
 * Codes 0xxx succeed, 8xxx are run-time errors, 9xxx parse errors (an undefined protocol name is 9001).
 * Every step has a timeout: a stopped BIRD still accepts connections and then never answers.
 */
import { connect, type Socket } from 'node:net';

export interface BirdReply {
  /** Code of the final line. */
  code: number;
  /** Every line's text, in order, without codes. */
  lines: string[];
}

export class BirdError extends Error {
  readonly code = 'POPDNS_E_BIRD';
}

const LINE = /^(\d{4})([ -])(.*)$/;

/** One connection to BIRD; commands run one at a time. */
export class BirdClient {
  private sock: Socket | null = null;
  private buf = '';
  private waiter: ((line: string | null) => void) | null = null;
  private queue: string[] = [];
  private closed = false;

  private constructor(private readonly timeoutMs: number) {}

  /** Connects and waits for the welcome line. */
  static async open(path: string, timeoutMs: number): Promise<BirdClient> {
    const c = new BirdClient(timeoutMs);
    await c.connect(path);
    return c;
  }

  private connect(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      this.sock = sock;
      sock.setEncoding('utf8');
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new BirdError(`${path}: no welcome from BIRD within ${this.timeoutMs} ms [POPDNS_E_BIRD]`));
      }, this.timeoutMs);
      sock.on('data', (d: string) => this.onData(d));
      sock.on('close', () => {
        this.closed = true;
        this.flushWaiter(null);
      });
      // `on`, not `once`: an error later in the connection's life must not go unhandled (and crash).
      sock.on('error', (e) => {
        clearTimeout(timer);
        reject(new BirdError(`${path}: ${e.message} [POPDNS_E_BIRD]`));
      });
      this.readReply()
        .then((r) => {
          clearTimeout(timer);
          if (r.code !== 1) reject(new BirdError(`${path}: unexpected welcome ${r.code} [POPDNS_E_BIRD]`));
          else resolve();
        })
        .catch((e: unknown) => {
          clearTimeout(timer);
          reject(e instanceof Error ? e : new BirdError(String(e)));
        });
    });
  }

  private onData(d: string): void {
    this.buf += d;
    let nl = this.buf.indexOf('\n');
    while (nl >= 0) {
      this.queue.push(this.buf.slice(0, nl));
      this.buf = this.buf.slice(nl + 1);
      nl = this.buf.indexOf('\n');
    }
    if (this.buf.length > 1 << 20) this.sock?.destroy();
    while (this.waiter && this.queue.length > 0) this.flushWaiter(this.queue.shift()!);
  }

  private flushWaiter(line: string | null): void {
    const w = this.waiter;
    this.waiter = null;
    w?.(line);
  }

  private nextLine(): Promise<string | null> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  /** Reads lines until the one that ends the reply (`DDDD text`). */
  private async readReply(): Promise<BirdReply> {
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) {
      const line = await this.nextLine();
      if (line === null) throw new BirdError('BIRD closed the control connection [POPDNS_E_BIRD]');
      const m = LINE.exec(line);
      if (!m) {
        if (line.startsWith(' ')) lines.push(line.slice(1));
        continue; // `+` spontaneous printouts and anything unknown are skipped
      }
      lines.push(m[3]!);
      if (m[2] === ' ') return { code: Number(m[1]), lines };
    }
    throw new BirdError('BIRD reply too long [POPDNS_E_BIRD]');
  }

  /** Sends one command and returns its reply; throws BirdError on timeout. */
  async command(cmd: string): Promise<BirdReply> {
    if (!this.sock || this.closed) throw new BirdError('BIRD connection is closed [POPDNS_E_BIRD]');
    if (/[\r\n]/.test(cmd)) throw new BirdError('a BIRD command is one line [POPDNS_E_BIRD]');
    this.sock.write(`${cmd}\n`);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.sock?.destroy();
        reject(new BirdError(`BIRD did not answer "${cmd}" within ${this.timeoutMs} ms [POPDNS_E_BIRD]`));
      }, this.timeoutMs);
    });
    try {
      return await Promise.race([this.readReply(), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.sock?.end();
    this.sock?.destroy();
  }
}

/**
 * `enable PROTO` / `disable PROTO`. Resolves with BIRD's own words ("anycast4: disabled", "already
 * enabled"); throws with an operator-readable reason otherwise.
 */
export async function setProtocol(bird: BirdClient, protocol: string, enabled: boolean): Promise<string> {
  const r = await bird.command(`${enabled ? 'enable' : 'disable'} ${protocol}`);
  if (r.code === 0) return r.lines.filter((l) => l.length > 0).join('; ');
  if (r.code === 9001) {
    throw new BirdError(
      `BIRD has no protocol "${protocol}" (add "protocol static ${protocol}" to bird.conf; see deploy/bird/) [POPDNS_E_BIRD]`,
    );
  }
  if (r.code === 8007)
    throw new BirdError(`BIRD refused "${protocol}": access denied (restricted socket) [POPDNS_E_BIRD]`);
  throw new BirdError(
    `BIRD answered ${r.code} to ${enabled ? 'enable' : 'disable'} ${protocol}: ${r.lines.join('; ')} [POPDNS_E_BIRD]`,
  );
}
