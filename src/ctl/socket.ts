/**
 * The control socket: a Unix stream socket, mode 0660 (the service's group may use it). One
 * request per connection, one JSON line each way:
 *   → {"verb":"reload","args":["example.com"]}
 *   ← {"ok":true,"text":"example.com. loaded: serial 1 → 2, 4 records, 0.003 s\n","data":{…}}
 * Only the serving process (the primary, with workers) listens; it runs or forwards each request.
 */
import { chmodSync, unlinkSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { CtlOutput } from './verbs.js';

export interface CtlRequest {
  verb: string;
  args: string[];
}

/** A request larger than this is refused (verbs take a few names). */
const MAX_REQUEST = 64 * 1024;

/** Reads one newline-terminated JSON line from a socket (bounded). */
function readLine(sock: Socket, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (d: Buffer): void => {
      const nl = d.indexOf(0x0a);
      chunks.push(nl >= 0 ? d.subarray(0, nl) : d);
      size += d.length;
      if (nl >= 0) {
        cleanup();
        resolve(Buffer.concat(chunks).toString('utf8'));
      } else if (size > max) {
        cleanup();
        reject(new Error(`message larger than ${max} bytes`));
      }
    };
    const onEnd = (): void => {
      cleanup();
      if (chunks.length > 0) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(new Error('connection closed before a message'));
    };
    const onError = (e: Error): void => {
      cleanup();
      reject(e);
    };
    const cleanup = (): void => {
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('error', onError);
    };
    sock.on('data', onData);
    sock.on('end', onEnd);
    sock.on('error', onError);
  });
}

function parseRequest(line: string): CtlRequest {
  const v = JSON.parse(line) as unknown;
  if (typeof v !== 'object' || v === null) throw new Error('a request is a JSON object');
  const { verb, args } = v as { verb?: unknown; args?: unknown };
  if (typeof verb !== 'string') throw new Error('"verb" must be a string');
  if (args !== undefined && !(Array.isArray(args) && args.every((a) => typeof a === 'string')))
    throw new Error('"args" must be a list of strings');
  return { verb, args: (args as string[] | undefined) ?? [] };
}

/** Is a live server answering on this socket path? */
function answering(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Listens on `path` and answers each request with `dispatch`. A stale socket file (no server
 * behind it) is replaced; a live one is an error (another popdns uses that path). The socket file
 * is removed by `close()`.
 */
export async function startControlSocket(
  path: string,
  dispatch: (req: CtlRequest) => Promise<CtlOutput>,
): Promise<{ server: Server; close: () => void }> {
  const server = createServer((sock) => {
    sock.on('error', () => {}); // a client that went away: nothing to do
    readLine(sock, MAX_REQUEST)
      .then(parseRequest)
      .then(dispatch, (e: Error) => ({
        ok: false,
        text: `bad request: ${e.message} [POPDNS_E_CTL_USAGE]\n`,
        data: { error: e.message },
        usage: true,
      }))
      .then(
        (out) => sock.end(`${JSON.stringify(out)}\n`),
        (e: Error) =>
          sock.end(
            `${JSON.stringify({ ok: false, text: `${e.message} [POPDNS_E_CTL]\n`, data: { error: e.message } })}\n`,
          ),
      );
  });
  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      // The socket is created with the process umask: make it 0660 from the start, not after.
      const old = process.umask(0o117);
      server.listen(path, () => {
        process.umask(old);
        server.off('error', reject);
        resolve();
      });
      server.once('error', () => process.umask(old));
    });
  try {
    await listen();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw e;
    if (await answering(path)) throw new Error(`${path} is in use by another running server`, { cause: e });
    unlinkSync(path);
    await listen();
  }
  chmodSync(path, 0o660);
  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    server.close();
    try {
      unlinkSync(path);
    } catch {
      // already gone
    }
  };
  return { server, close };
}

/** What came back from the server, or why nothing did. */
export type CtlReply = { reply: CtlOutput } | { error: string };

/**
 * Sends one request to the control socket and waits (up to `timeoutMs`; 0 = no limit) for the answer.
 */
export function ctlRequest(path: string, req: CtlRequest, timeoutMs: number): Promise<CtlReply> {
  return new Promise((resolve) => {
    const sock = connect(path);
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            sock.destroy();
            resolve({ error: `no answer from ${path} within ${timeoutMs / 1000} s` });
          }, timeoutMs)
        : null;
    const done = (r: CtlReply): void => {
      if (timer) clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    sock.once('error', (e) => done({ error: `cannot reach the server at ${path}: ${e.message}` }));
    sock.once('connect', () => {
      sock.write(`${JSON.stringify(req)}\n`);
      readLine(sock, Number.MAX_SAFE_INTEGER).then(
        (line) => {
          try {
            done({ reply: JSON.parse(line) as CtlOutput });
          } catch (e) {
            done({ error: `bad answer from ${path}: ${(e as Error).message}` });
          }
        },
        (e: Error) => done({ error: `no answer from ${path}: ${e.message}` }),
      );
    });
  });
}
