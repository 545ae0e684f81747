// Development mock of the `spec-host ui` HTTP API (host-harness/spec-host/src/ui/API.md).
//
// Node 20, no dependencies. Serves the page's assets straight from
// host-harness/spec-host/src/ui/assets (so edits show on reload, no Rust build needed) and
// answers the API from in-memory fake data. Mock-only endpoints under /mock/
// drive what a real lattice would do on its own (see tests/ui/README.md).
//
//   node tests/ui/mock-server.mjs [--port 8088]      (or PORT=8088)
//
// Deliberately not a faithful host: it implements just enough of wasmCloud's
// link rules (validation, the same-name/overlapping-interface conflict,
// config existence) for the page to exercise every path it has.

import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const ASSETS = path.resolve(here, '../../host-harness/spec-host/src/ui/assets');
const argPort = process.argv.indexOf('--port');
const PORT = Number(argPort > 0 ? process.argv[argPort + 1] : process.env.PORT || 8088);
// Set MOCK_QUIET=1 to stop the periodic fake changes (stable screenshots).
const QUIET = process.env.MOCK_QUIET === '1';

const CONFLICT =
  'link already exists with different target, consider deleting the existing link or using a different link name';
const LATTICE = 'default';
/** Open /api/events responses (declared early: the seed changes broadcast). */
const streams = new Set();

// ---------------------------------------------------------------- fake data

function link(source_id, target, ns, pkg, interfaces, extra = {}) {
  return {
    source_id, target, name: 'default', wit_namespace: ns, wit_package: pkg,
    interfaces, source_config: [], target_config: [], ...extra,
  };
}

/** id -> {url, links} — the decodable specs. */
const specs = new Map([
  ['http-router', { url: 'ghcr.io/acme/http-router:1.4.0', links: [
    link('http-router', 'api-backend', 'acme', 'orders', ['api']),
    link('http-router', 'kvredis', 'wasi', 'keyvalue', ['store', 'atomics'], { target_config: ['redis-url', 'SECRET_redis-password'] }),
    link('http-router', 'blobstore-fs', 'wasi', 'blobstore', ['blobstore'], { name: 'archive', source_config: ['root-path'] }),
  ] }],
  ['api-backend', { url: 'ghcr.io/acme/api-backend:2.0.1', links: [
    link('api-backend', 'kvredis', 'wasi', 'keyvalue', ['store'], { target_config: ['redis-url'] }),
    link('api-backend', 'messaging-nats', 'wasmcloud', 'messaging', ['consumer']),
    link('api-backend', 'legacy-billing', 'acme', 'billing', ['invoices']),
  ] }],
  // A provider with a spec: providers are link sources too (http server -> component).
  ['httpserver', { url: 'ghcr.io/wasmcloud/http-server:0.23.0', links: [
    link('httpserver', 'http-router', 'wasi', 'http', ['incoming-handler'], { source_config: ['http-port'] }),
  ] }],
  ['cron-job', { url: 'ghcr.io/acme/cron-job:0.3.0', links: [] }],
]);

/** id -> {key, error} — spec keys whose value does not decode. The error
 * deliberately contains markup: the page must show it as text. */
const undecodable = new Map([
  ['broken-app', { key: 'COMPONENT_broken-app', error: 'expected value at line 1 column 1 <img src=x onerror=alert(1)>' }],
]);

const configs = new Map([
  ['redis-url', { secret_reference: false, values: { url: 'redis://127.0.0.1:6379' } }],
  ['root-path', { secret_reference: false, values: { root: '/srv/blobs', note: '<b>not bold</b>' } }],
  ['http-port', { secret_reference: false, values: { address: '0.0.0.0:8080' } }],
  ['SECRET_redis-password', { secret_reference: true, values: null }],
]);

const started = Date.now();
const hostState = [
  { host_id: 'NAHOSTALPHA', providers: ['kvredis', 'httpserver'], ok: 12, failed: 1,
    rollout: { stage: 'canary', percent: 25, target_digest: 'sha256:9f2c4e1d0b7a', started_at: '2026-11-30T09:58:00Z' } },
  { host_id: 'NAHOSTBRAVO', providers: ['messaging-nats', 'blobstore-fs'], ok: 7, failed: 0, rollout: null },
];

function hostStatus(h, i) {
  const links = [...specs.values()].reduce((n, s) => n + s.links.length, 0);
  return {
    host_id: h.host_id, lattice: LATTICE, bucket: `LATTICEDATA_${LATTICE}`,
    plugin: { version: i === 0 ? 'spec-plugin 0.9.0' : 'spec-plugin 0.8.2',
      digest: i === 0 ? '3b7f0e9a41c2d88e5f60a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6'
        : 'a1d4c0ffee5e7b9a0c2d4e6f80a2b4c6d8e0f2a4b6c8d0e2f4a6b8c0d2e4f6a8', path: i === 0 ? '/opt/spec_plugin.wasm' : null },
    providers: h.providers, links, components: specs.size,
    uptime_secs: Math.floor((Date.now() - started) / 1000) + 3600 * (i + 1),
    requests_ok: h.ok, requests_failed: h.failed, swaps: i, busy: i === 0 ? 2 : 0,
    in_flight: 0, pool_size: 4, pending_changes: 0, caught_up: true, links_restored: i,
    rollout: h.rollout,
    ...(i === 1 ? { experimental_field: 'shown generically' } : {}),
  };
}

const changes = [];
function addChange(kind, text) {
  const c = { at: new Date().toISOString(), kind, text };
  changes.push(c);
  while (changes.length > 200) changes.shift();
  broadcast('change', c);
}
addChange('spec', 'http-router: 3 links');
addChange('undecodable', 'broken-app: expected value at line 1 column 1');
addChange('config', 'redis-url');

let natsConnected = true;

// ---------------------------------------------------------------- rules

const ID_RE = /^[-/_=.a-zA-Z0-9]+$/;
function idError(id) {
  if (typeof id !== 'string' || id === '') return 'id is empty';
  if (!ID_RE.test(id)) return `id ${JSON.stringify(id)} contains a character outside [-/_=.a-zA-Z0-9]`;
  if (id.startsWith('.') || id.endsWith('.')) return `id ${JSON.stringify(id)} starts or ends with '.'`;
  if (id.includes('..')) return `id ${JSON.stringify(id)} contains '..'`;
  return null;
}

function normalizeLink(body) {
  const l = {
    source_id: body.source_id ?? '', target: body.target ?? '', name: body.name || 'default',
    wit_namespace: body.wit_namespace ?? '', wit_package: body.wit_package ?? '',
    interfaces: body.interfaces ?? [], source_config: body.source_config ?? [], target_config: body.target_config ?? [],
  };
  for (const f of ['source_id', 'target', 'wit_namespace', 'wit_package']) {
    if (typeof l[f] !== 'string' || l[f] === '') return { error: `invalid link: ${f} is empty` };
  }
  if (!Array.isArray(l.interfaces) || l.interfaces.length === 0) return { error: 'invalid link: interfaces is empty: a link needs at least one' };
  for (const f of ['source_id', 'target']) {
    const e = idError(l[f]);
    if (e) return { error: `invalid id: link ${f}: ${e}` };
  }
  for (const c of [...l.source_config, ...l.target_config]) {
    if (!configs.has(c)) return { error: `configuration ${JSON.stringify(c)} does not exist` };
  }
  return { link: l };
}

function putLink(l) {
  const spec = specs.get(l.source_id) ?? { url: '', links: [] };
  const sameName = (e) => e.wit_namespace === l.wit_namespace && e.wit_package === l.wit_package && e.name === l.name;
  if (spec.links.some((e) => sameName(e) && e.target !== l.target && e.interfaces.some((i) => l.interfaces.includes(i)))) {
    return { success: false, message: CONFLICT };
  }
  const i = spec.links.findIndex((e) => sameName(e) && e.target === l.target);
  if (i >= 0) spec.links[i] = l; else spec.links.push(l);
  writeSpec(l.source_id, spec);
  return { success: true, message: '' };
}

function deleteLink(d) {
  const name = d.name || 'default';
  const spec = specs.get(d.source_id);
  if (!spec) return { success: true, message: '' }; // absent is fine, as in wasmCloud
  const before = spec.links.length;
  spec.links = spec.links.filter((e) => !(e.wit_namespace === d.wit_namespace && e.wit_package === d.wit_package && e.name === name));
  if (spec.links.length !== before) writeSpec(d.source_id, spec);
  return { success: true, message: '' };
}

function writeSpec(id, spec) {
  specs.set(id, spec);
  undecodable.delete(id);
  broadcast('spec', { id, url: spec.url, links: spec.links });
  addChange('spec', `${id}: ${spec.links.length} link${spec.links.length === 1 ? '' : 's'}`);
}

function componentDetails(id) {
  const e = idError(id);
  if (e) return [400, { error: e }];
  const spec = specs.get(id);
  const inbound = [...specs.values()].flatMap((s) => s.links.filter((l) => l.target === id));
  if (!spec && inbound.length === 0) return [404, { error: `no component ${JSON.stringify(id)} in lattice ${LATTICE}` }];
  const outbound = spec ? spec.links : [];
  const import_links = outbound.flatMap((l) => l.interfaces.map((i) => ({
    name: l.name, interface: `${l.wit_namespace}:${l.wit_package}/${i}`, target: l.target })));
  return [200, { id, url: spec ? spec.url : '', outbound, inbound, import_links }];
}

function snapshot() {
  return {
    lattice: LATTICE, connected: natsConnected,
    components: [...specs.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([id, s]) => ({ id, url: s.url, links: s.links })),
    undecodable: [...undecodable.entries()].map(([id, u]) => ({ id, ...u })),
    configs: [...configs.entries()].map(([name, c]) => ({ name, ...c })),
    hosts: hostState.map(hostStatus),
    changes,
  };
}

// ---------------------------------------------------------------- SSE

let outageUntil = 0; // while in the future, /api/events answers 503

function broadcast(event, data) {
  const msg = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  for (const res of streams) res.write(msg);
}

setInterval(() => broadcast('hosts', hostState.map(hostStatus)), 2000);

// Periodic fake activity: cron-job gains and loses a link, a config flips.
let tick = 0;
if (!QUIET) {
  setInterval(() => {
    tick++;
    const spec = specs.get('cron-job');
    if (spec && tick % 2 === 1) {
      spec.links = [link('cron-job', 'kvredis', 'wasi', 'keyvalue', ['store'], { name: 'cron' })];
      writeSpec('cron-job', spec);
    } else if (spec) {
      spec.links = [];
      writeSpec('cron-job', spec);
    }
    if (tick % 3 === 0) {
      configs.set('http-port', { secret_reference: false, values: { address: `0.0.0.0:${8080 + (tick % 5)}` } });
      broadcast('config', { name: 'http-port', ...configs.get('http-port') });
      addChange('config', 'http-port');
    }
    hostState[tick % 2].ok += 1;
  }, 7000);
}

// ---------------------------------------------------------------- HTTP

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(text);
}

async function readJson(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return raw ? JSON.parse(raw) : {};
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://mock');
  const p = url.pathname;
  try {
    if (req.method === 'GET' && (p === '/' || p === '/app.js' || p === '/app.css')) {
      const file = p === '/' ? 'index.html' : p.slice(1);
      return send(res, 200, fs.readFileSync(path.join(ASSETS, file), 'utf8'), TYPES[path.extname(file)]);
    }
    if (req.method === 'GET' && p === '/api/snapshot') return send(res, 200, snapshot());
    if (req.method === 'GET' && p.startsWith('/api/components/')) {
      // Like axum: match on the raw segment, then percent-decode it.
      const raw = p.slice('/api/components/'.length);
      if (raw.includes('/')) return send(res, 404, { error: 'not found' });
      const [status, body] = componentDetails(decodeURIComponent(raw));
      return send(res, status, body);
    }
    if (req.method === 'GET' && p === '/api/events') {
      if (Date.now() < outageUntil) return send(res, 503, { error: 'mock outage' });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`event: connection\ndata: ${JSON.stringify({ connected: natsConnected })}\n\n`);
      streams.add(res);
      req.on('close', () => streams.delete(res));
      return;
    }
    if (req.method === 'POST' && p === '/api/links') {
      const { link: l, error } = normalizeLink(await readJson(req));
      return send(res, 200, error ? { success: false, message: error } : putLink(l));
    }
    if (req.method === 'POST' && p === '/api/links/delete') {
      const d = await readJson(req);
      if (!d.source_id || !d.wit_namespace || !d.wit_package) return send(res, 200, { success: false, message: 'source_id, wit_namespace and wit_package are required' });
      return send(res, 200, deleteLink(d));
    }
    // ---- mock-only controls (never called by the page or browser.mjs)
    if (req.method === 'POST' && p === '/mock/external') {
      // "Another host" writes a link: body is a Link, applied after ?delay ms.
      const { link: l, error } = normalizeLink(await readJson(req));
      if (error) return send(res, 400, { error });
      setTimeout(() => putLink(l), Number(url.searchParams.get('delay') ?? 1000));
      return send(res, 202, { accepted: true });
    }
    if (req.method === 'POST' && p === '/mock/outage') {
      // Drop every event stream and refuse new ones for ?secs seconds.
      outageUntil = Date.now() + 1000 * Number(url.searchParams.get('secs') ?? 5);
      for (const s of streams) s.destroy();
      streams.clear();
      return send(res, 202, { outage_until: new Date(outageUntil).toISOString() });
    }
    if (req.method === 'POST' && p === '/mock/nats') {
      natsConnected = url.searchParams.get('connected') !== 'false';
      broadcast('connection', { connected: natsConnected });
      return send(res, 202, { connected: natsConnected });
    }
    if (req.method === 'POST' && p === '/mock/spam') {
      // Add ?n components (each linked to kvredis) to exercise the list view.
      const n = Number(url.searchParams.get('n') ?? 200);
      for (let i = 0; i < n; i++) {
        const id = `bulk-${String(i).padStart(4, '0')}`;
        specs.set(id, { url: `ghcr.io/acme/bulk:${i}`, links: [link(id, `bulk-target-${i % 40}`, 'wasi', 'keyvalue', ['store'])] });
        broadcast('spec', { id, ...specs.get(id) });
      }
      return send(res, 202, { added: n });
    }
    send(res, 404, { error: `no route ${req.method} ${p}` });
  } catch (e) {
    send(res, 400, { success: false, message: `bad request: ${e.message}`, error: `bad request: ${e.message}` });
  }
});

server.listen(PORT, '127.0.0.1', () => {
  console.log(`mock spec-host ui on http://127.0.0.1:${PORT}/ (assets: ${ASSETS})`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
