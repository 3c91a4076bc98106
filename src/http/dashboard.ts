/**
 * The dashboard: the static Vite build in dist/web/ (made by `npm run build`), served by the api
 * role at `/`. The page is a client of the same public API and stream as any bot; this module
 * only hands out its files. They are read once at start (a few hundred KB, bounded below), so
 * serving them touches no disk and no database.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { formatCash, type Cash } from '../core/money.js';
import { HttpError } from './errors.js';

/** dist/web, from src/http (tests) and from dist/http (the build) alike: both sit two levels down. */
export const DASHBOARD_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'dist', 'web');

/** Refuse to hold more than this in memory: the build is ~0.3 MB; anything near this is a mistake. */
const DASHBOARD_BYTES_MAX = 8 * 1024 * 1024;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.map': 'application/json',
};

/**
 * The page's policy: its own scripts, styles and images, and its own origin for fetch and the
 * WebSocket (CSP 3's 'self' covers ws: and wss: on the same host). No inline script or style
 * element, no eval, nothing from another origin, no framing, no form posts anywhere.
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
  "manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function isDashboardPath(url: string): boolean {
  const p = url.split('?', 1)[0]!;
  return p === '/' || p === '/index.html' || p.startsWith('/assets/');
}

interface StaticFile {
  body: Buffer;
  gzipped: Buffer | undefined;
  type: string;
  etag: string;
  /** Hashed names (assets/x-3f9c.js) never change content: browsers may keep them forever. */
  immutable: boolean;
}

function loadFiles(dir: string): Map<string, StaticFile> {
  const files = new Map<string, StaticFile>();
  let total = 0;
  const walk = (folder: string): void => {
    for (const name of readdirSync(folder)) {
      const full = path.join(folder, name);
      if (statSync(full).isDirectory()) {
        walk(full);
        continue;
      }
      const body = readFileSync(full);
      total += body.length;
      if (total > DASHBOARD_BYTES_MAX) throw new Error(`the dashboard build in ${dir} is over ${DASHBOARD_BYTES_MAX} bytes`);
      const rel = `/${path.relative(dir, full).split(path.sep).join('/')}`;
      const ext = path.extname(name);
      const type = CONTENT_TYPES[ext] ?? 'application/octet-stream';
      const compressible = /^(text\/|application\/json|image\/svg)/.test(type) && body.length > 512;
      files.set(rel, {
        body,
        gzipped: compressible ? gzipSync(body, { level: 9 }) : undefined,
        type,
        etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
        immutable: rel.startsWith('/assets/'),
      });
    }
  };
  walk(dir);
  return files;
}

export interface DashboardSettings {
  reservationBufferBps: bigint;
  orderNotionalMin: Cash;
}

/**
 * Registers `/`, `/index.html`, `/assets/*` and `GET /dashboard/settings` (the numbers the order
 * ticket needs to show a hold before sending). Without a build (a checkout that never ran
 * `npm run build`), `/` says how to make one instead of failing.
 */
export function registerDashboard(server: FastifyInstance, settings: DashboardSettings, dir = DASHBOARD_DIR): void {
  const files = existsSync(path.join(dir, 'index.html')) ? loadFiles(dir) : new Map<string, StaticFile>();
  const publicRoute = { auth: 'public' as const };

  const send = (request: FastifyRequest, reply: FastifyReply, file: StaticFile | undefined) => {
    if (!file) {
      void reply.header('cache-control', 'no-store');
      if (files.size > 0) throw new HttpError('NOT_FOUND', `no dashboard file ${request.url.split('?', 1)[0]}`);
      return reply
        .status(404)
        .type('text/plain; charset=utf-8')
        .send('The dashboard is not built: run `npm run build` (npm start does it), then reload.\n');
    }
    void reply.header('cache-control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache');
    void reply.header('etag', file.etag);
    void reply.header('vary', 'accept-encoding');
    if (request.headers['if-none-match'] === file.etag) return reply.status(304).send();
    void reply.type(file.type);
    const accepts = String(request.headers['accept-encoding'] ?? '');
    if (file.gzipped && /\bgzip\b/.test(accepts)) {
      void reply.header('content-encoding', 'gzip');
      return reply.send(file.gzipped);
    }
    return reply.send(file.body);
  };

  const page = { config: publicRoute, schema: { hide: true } };
  server.get('/', page, async (request, reply) => send(request, reply, files.get('/index.html')));
  server.get('/index.html', page, async (request, reply) => send(request, reply, files.get('/index.html')));
  server.get<{ Params: { '*': string } }>('/assets/*', page, async (request, reply) => send(request, reply, files.get(`/assets/${request.params['*']}`)));
  server.get(
    '/dashboard/settings',
    { config: publicRoute, schema: { hide: true } },
    async () => ({ reservation_buffer_bps: Number(settings.reservationBufferBps), min_order_notional: formatCash(settings.orderNotionalMin) }),
  );
}
