import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import { freePort } from '../../../tools/servers.js';

/**
 * S3's conditional writes in front of s3rver, which ignores them: a PUT (or a multipart completion) with
 * `If-None-Match: *` or `If-Match: <etag>`, and a DELETE with `If-Match`, is checked against the object as
 * s3rver has it (a HEAD), one request per key at a time, and answered 412 PreconditionFailed — S3's own reply
 * — when the condition does not hold; otherwise forwarded. Every other request on an object is forwarded
 * unchanged, one at a time per object (s3rver is not safe against a read racing a rewrite of the same file).
 *
 * This is a stand-in for S3's server-side check, so that suites running concurrent writers against s3rver
 * see the semantics the store relies on; it does not show how real S3 behaves. LocalStore and Azurite
 * enforce conditions themselves (test/core/localStoreRace.test.ts, test/azure/BlobStore.test.ts).
 */
export async function startConditionalProxy(target: number): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const locks = new Map<string, Promise<void>>();
  const serially = async (key: string, work: () => Promise<void>) => {
    const before = locks.get(key) ?? Promise.resolve();
    const mine = before.then(work, work);
    locks.set(key, mine);
    try {
      await mine;
    } finally {
      if (locks.get(key) === mine) locks.delete(key);
    }
  };
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    const ifNoneMatch = req.headers['if-none-match'];
    const ifMatch = req.headers['if-match'];
    const upload = url.searchParams.has('uploadId');
    const conditional =
      (ifNoneMatch === '*' || typeof ifMatch === 'string') &&
      ((req.method === 'PUT' && !upload) || (req.method === 'POST' && upload) || req.method === 'DELETE');
    if (!conditional) {
      // requests on one object go one at a time too: s3rver answered a GET of an object it was rewriting
      // with nothing (the state-machine split suite hung on a lease read), bucket-level requests pass
      if (url.pathname.split('/').filter(Boolean).length < 2) forward(target, req, res);
      else void serially(url.pathname, () => forwarded(target, req, res));
      return;
    }
    void serially(url.pathname, async () => {
      const current = await head(target, url.pathname);
      const refused =
        (ifNoneMatch === '*' && current !== undefined) ||
        (typeof ifMatch === 'string' && (current === undefined || bare(current) !== bare(ifMatch)));
      if (refused) {
        req.resume();
        await new Promise<void>((done) => req.on('end', done));
        res.writeHead(412, { 'content-type': 'application/xml' });
        res.end(
          '<?xml version="1.0" encoding="UTF-8"?><Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>',
        );
        return;
      }
      await forwarded(target, req, res);
    });
  });
  const port = await freePort();
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const bare = (etag: string) => etag.replace(/^W\//, '').replaceAll('"', '');

/** forward, settled when the answer has gone back (or the client went away). */
const forwarded = (target: number, req: IncomingMessage, res: ServerResponse) =>
  new Promise<void>((done) => {
    res.on('close', done);
    forward(target, req, res);
  });

/** Passes a request to 127.0.0.1:`target` and its answer back, unchanged. */
export function forward(target: number, req: IncomingMessage, res: ServerResponse): void {
  const upstream = request(
    { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}

/** The object's ETag as s3rver has it, or undefined when there is none. */
function head(target: number, path: string): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const probe = request({ host: '127.0.0.1', port: target, method: 'HEAD', path }, (answer) => {
      answer.resume();
      answer.on('end', () => resolve(answer.statusCode === 200 ? String(answer.headers.etag ?? '') : undefined));
    });
    probe.on('error', reject);
    probe.end();
  });
}
