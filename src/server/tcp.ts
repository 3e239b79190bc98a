/**
 * DNS over TCP (RFC 7766): 2-byte length framing, partial reads, pipelined queries answered in order
 * of arrival, an idle timeout, a short timeout for a message that stalls half-way, a write timeout for
 * clients that stop reading, and a cap on connections that closes the oldest idle one first.
 */
import { createServer, type Server, type Socket } from 'node:net';
import type { Counters } from './counters.js';
import type { TransferJob } from '../xfr/primary.js';
import type { Handler } from './handler.js';
import type { ListenAddr } from './listen.js';
import type { QueryTap } from './tap.js';

export interface TcpOptions {
  /** Close a connection with no query for this long (ms). */
  idleTimeout: number;
  /** Close a connection whose message stays incomplete this long (ms). */
  stallTimeout: number;
  /** Close a connection whose responses are not read for this long (ms). */
  writeTimeout: number;
  maxConnections: number;
}

export const TCP_DEFAULTS: TcpOptions = {
  idleTimeout: 10_000,
  stallTimeout: 2_000,
  writeTimeout: 5_000,
  maxConnections: 1000,
};

/** Stop reading from a client when this much of its answers is still unsent. */
const MAX_PENDING_WRITE = 256 * 1024;
/**
 * A zone transfer waits for the socket to drain past this much unsent data: enough for a few 64 KiB
 * messages, so the transfer is not woken for every one of them on a busy machine.
 */
const TRANSFER_PENDING_WRITE = 1024 * 1024;

interface Conn {
  socket: Socket;
  buf: Buffer | null;
  lastActivity: number;
  timer: NodeJS.Timeout | null;
  writeTimer: NodeJS.Timeout | null;
  /** A zone transfer is streaming on this connection: later messages wait until it is done. */
  busy: boolean;
}

export class TcpListener {
  readonly server: Server;
  private readonly conns = new Set<Conn>();
  /** Answers NOTIFY messages (the secondary side); null = they go to the handler like any query. */
  notifyHook: ((msg: Buffer, from: string) => Buffer | null | Promise<Buffer | null>) | null = null;
  /** Answers UPDATE messages elsewhere (the writer of a worker pool); null = they go to the handler. */
  updateHook: ((msg: Buffer, from: string, tcp: boolean) => Promise<Buffer | null>) | null = null;
  /** dnstap writer (src/dnstap); null = off. */
  dnstap: QueryTap | null = null;

  constructor(
    private readonly handler: () => Handler,
    private readonly counters: Counters,
    private readonly opts: TcpOptions,
  ) {
    this.server = createServer({ noDelay: true }, (s) => this.accept(s));
    this.server.on('error', () => {});
  }

  listen(addr: ListenAddr): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (e: Error): void => reject(e);
      this.server.once('error', onError);
      this.server.listen(
        { host: addr.host, port: addr.port, ipv6Only: addr.family === 6, backlog: 1024 },
        () => {
          this.server.off('error', onError);
          resolve();
        },
      );
    });
  }

  get connections(): number {
    return this.conns.size;
  }

  private accept(socket: Socket): void {
    if (this.conns.size >= this.opts.maxConnections) {
      // Make room by closing the connection idle the longest; refuse if none is idle.
      let oldest: Conn | null = null;
      for (const c of this.conns) {
        if (
          c.buf === null &&
          c.socket.writableLength === 0 &&
          (!oldest || c.lastActivity < oldest.lastActivity)
        ) {
          oldest = c;
        }
      }
      if (!oldest) {
        this.counters.tcpRefused++;
        socket.destroy();
        return;
      }
      this.close(oldest);
      this.counters.tcpRefused++;
    }
    const conn: Conn = {
      socket,
      buf: null,
      lastActivity: Date.now(),
      timer: null,
      writeTimer: null,
      busy: false,
    };
    this.conns.add(conn);
    this.counters.tcpOpen++;
    this.arm(conn, this.opts.idleTimeout);
    socket.on('data', (d: Buffer) => this.onData(conn, d));
    socket.on('error', () => this.close(conn));
    socket.on('close', () => this.close(conn));
    socket.on('end', () => {
      socket.end();
    });
    socket.on('drain', () => {
      if (conn.writeTimer) {
        clearTimeout(conn.writeTimer);
        conn.writeTimer = null;
      }
      if (socket.isPaused()) socket.resume();
    });
  }

  private arm(conn: Conn, ms: number): void {
    if (conn.timer) clearTimeout(conn.timer);
    conn.timer = setTimeout(() => this.close(conn), ms);
    conn.timer.unref();
  }

  private onData(conn: Conn, data: Buffer): void {
    let buf = conn.buf ? Buffer.concat([conn.buf, data]) : data;
    if (conn.busy) {
      // Answered in order: queries pipelined behind a transfer wait for it (bounded by the pause below).
      conn.buf = Buffer.from(buf);
      if (buf.length > MAX_PENDING_WRITE) conn.socket.pause();
      return;
    }
    let off = 0;
    const handler = this.handler();
    while (buf.length - off >= 2) {
      const len = buf.readUInt16BE(off);
      if (len === 0) {
        this.close(conn);
        return;
      }
      if (buf.length - off - 2 < len) break;
      const msg = buf.subarray(off + 2, off + 2 + len);
      off += 2 + len;
      const hook =
        len >= 12 && (msg[2]! & 0xf0) === 0x20
          ? (msg[2]! & 0x08) === 0
            ? this.notifyHook
            : this.updateHook
          : null;
      if (hook !== null) {
        // NOTIFY (opcode 4, QR=0) goes to the secondary side, UPDATE (opcode 5) to the one writer
        // (--workers N); the answer is written when ready.
        const socket = conn.socket;
        void Promise.resolve(hook(Buffer.from(msg), socket.remoteAddress ?? '', true)).then((r) => {
          if (!r || socket.destroyed) return;
          const frame = Buffer.allocUnsafe(r.length + 2);
          frame.writeUInt16BE(r.length, 0);
          r.copy(frame, 2);
          socket.write(frame);
        });
        conn.lastActivity = Date.now();
        continue;
      }
      const job = handler.transfers?.tcp(msg, conn.socket.remoteAddress ?? '');
      if (job) {
        conn.buf = off < buf.length ? Buffer.from(buf.subarray(off)) : null;
        this.runTransfer(conn, job);
        return;
      }
      const out = handler.handle(msg, true, conn.socket.remoteAddress ?? '');
      if (this.dnstap !== null) this.dnstap.tcp(msg, out, conn.socket);
      if (out) {
        const frame = Buffer.allocUnsafe(out.length + 2);
        frame.writeUInt16BE(out.length, 0);
        out.copy(frame, 2);
        conn.socket.write(frame);
      }
      conn.lastActivity = Date.now();
    }
    buf = buf.subarray(off);
    conn.buf = buf.length > 0 ? Buffer.from(buf) : null;
    // An incomplete message must complete quickly; a connection between messages may idle longer.
    this.arm(conn, conn.buf ? this.opts.stallTimeout : this.opts.idleTimeout);
    const s = conn.socket;
    if (s.writableLength > 0 && !conn.writeTimer) {
      conn.writeTimer = setTimeout(() => this.close(conn), this.opts.writeTimeout);
      conn.writeTimer.unref();
    }
    if (s.writableLength > MAX_PENDING_WRITE) s.pause();
  }

  /**
   * Streams a zone transfer: each message is written when the socket has room (the client's reading
   * speed sets the pace), the connection's idle timer is held off meanwhile, and a client that stops
   * reading for writeTimeout is dropped. Then the messages that queued behind it are answered.
   */
  private runTransfer(conn: Conn, job: TransferJob): void {
    conn.busy = true;
    if (conn.timer) clearTimeout(conn.timer);
    conn.timer = null;
    const s = conn.socket;
    const send = (m: Buffer): Promise<void> =>
      new Promise((resolve, reject) => {
        if (s.destroyed) return reject(new Error('connection closed'));
        // The length prefix and the message go out in one writev (corked), the message not copied.
        const prefix = Buffer.allocUnsafe(2);
        prefix.writeUInt16BE(m.length, 0);
        s.cork();
        s.write(prefix);
        s.write(m);
        s.uncork();
        if (s.writableLength <= TRANSFER_PENDING_WRITE) return resolve();
        const timer = setTimeout(() => done(new Error('client stopped reading')), this.opts.writeTimeout);
        const onDrain = (): void => done(null);
        const onClose = (): void => done(new Error('connection closed'));
        function done(err: Error | null): void {
          clearTimeout(timer);
          s.off('drain', onDrain);
          s.off('close', onClose);
          if (err) reject(err);
          else resolve();
        }
        s.on('drain', onDrain);
        s.once('close', onClose);
      });
    void job(send)
      .catch(() => this.close(conn))
      .finally(() => {
        conn.busy = false;
        conn.lastActivity = Date.now();
        if (!this.conns.has(conn)) return;
        if (s.isPaused()) s.resume();
        this.onData(conn, Buffer.alloc(0));
      });
  }

  private close(conn: Conn): void {
    if (!this.conns.delete(conn)) return;
    this.counters.tcpOpen--;
    if (conn.timer) clearTimeout(conn.timer);
    if (conn.writeTimer) clearTimeout(conn.writeTimer);
    conn.socket.destroy();
  }

  /** Stops accepting and closes every connection. */
  async shutdown(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of [...this.conns]) this.close(c);
    await closed;
  }

  /** Stops accepting new connections but keeps answering on open ones. */
  stopAccepting(): void {
    this.server.close();
  }
}
