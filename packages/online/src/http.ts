// The HTTP front of a server, on Node's own http module (no framework: four routes, JSON in and
// out). POST /predict {"input": [...]} or {"inputs": [[...], ...]}; POST /feedback {"id", "label"};
// GET /health; GET /metrics (Prometheus text).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isRsError } from '@rs/core';
import type { OnlineServer } from './server';

const MAX_BODY = 16 * 1024 * 1024;

function body(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) reject(new Error('body too large'));
      else parts.push(chunk);
    });
    req.on('end', () => {
      try {
        resolve(JSON.parse(Buffer.concat(parts).toString('utf8')));
      } catch {
        reject(new Error('the body is not JSON'));
      }
    });
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, value: unknown, type = 'application/json'): void {
  const text = type === 'application/json' ? JSON.stringify(value) : String(value);
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function route(server: OnlineServer, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method === 'GET' && path === '/health') return reply(res, 200, { status: 'ok', version: server.version });
  if (req.method === 'GET' && path === '/metrics') return reply(res, 200, server.metrics(), 'text/plain; version=0.0.4');
  if (req.method === 'POST' && path === '/predict') {
    const data = (await body(req)) as { input?: number[]; inputs?: number[][] };
    if (Array.isArray(data?.inputs)) return reply(res, 200, { predictions: await Promise.all(data.inputs.map((row) => server.predict(row))) });
    return reply(res, 200, await server.predict(data?.input as number[]));
  }
  if (req.method === 'POST' && path === '/feedback') {
    const data = (await body(req)) as { id?: number; label?: number };
    server.feedback(Number(data?.id), Number(data?.label));
    return reply(res, 200, { ok: true });
  }
  return reply(res, 404, { error: `no route ${req.method ?? ''} ${path ?? ''}` });
}

/**
 * Serves `server` over HTTP on `port` (0: any free port) of `host` (default 127.0.0.1).
 *
 * @example
 * const http = await listen(server, { port: 8080 });
 * // curl -XPOST localhost:8080/predict -d '{"input":[...784 numbers]}'
 */
export async function listen(server: OnlineServer, options: { port?: number; host?: string } = {}): Promise<{ http: Server; port: number; close: () => Promise<void> }> {
  const http = createServer((req, res) => {
    route(server, req, res).catch((error: unknown) => {
      const status = isRsError(error) ? 400 : 500;
      reply(res, status, { error: error instanceof Error ? error.message : String(error), ...(isRsError(error) ? { code: error.code } : {}) });
    });
  });
  http.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => http.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return { http, port, close: () => new Promise<void>((resolve) => http.close(() => resolve())) };
}
