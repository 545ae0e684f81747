// Browser test of `spec-host ui` against a running server (real or mock).
//
// Env (see README.md): UI_URL, UI_SCREENSHOT, UI_EXPECT, UI_NEW_LINK,
// UI_CONFLICT_LINK, UI_EXTERNAL_EDGE. Prints one `ok - …` / `not ok - …`
// line per check, and the line READY-FOR-EXTERNAL-WRITE when the
// orchestrator should write the external link (check d). Exits non-zero if
// any check fails.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CONFLICT =
  'link already exists with different target, consider deleting the existing link or using a different link name';

function env(name, { json = false, required = true } = {}) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (required) bail(`env ${name} is required`);
    return undefined;
  }
  if (!json) return v;
  try { return JSON.parse(v); } catch (e) { bail(`env ${name} is not valid JSON: ${e.message}`); }
}

function bail(message) {
  console.log(`not ok - setup: ${message}`);
  process.exit(2);
}

const base = env('UI_URL').replace(/\/+$/, '');
const screenshot = env('UI_SCREENSHOT');
const expect = env('UI_EXPECT', { json: true });
const newLink = env('UI_NEW_LINK', { json: true });
const conflictLink = env('UI_CONFLICT_LINK', { json: true });
const externalEdge = env('UI_EXTERNAL_EDGE', { json: true });
if (!Array.isArray(expect.nodes) || !Array.isArray(expect.edges)) bail('UI_EXPECT must be {"nodes":[…],"edges":[[src,tgt],…]}');

let failures = 0;
function report(ok, text, detail) {
  console.log(`${ok ? 'ok' : 'not ok'} - ${text}${!ok && detail ? `: ${detail}` : ''}`);
  if (!ok) failures++;
}

/** Polls fn (async, returning {done, …}) until done or timeout; returns the last result. */
async function poll(fn, timeoutMs, everyMs = 200) {
  const end = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await fn();
    if (last.done || Date.now() >= end) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Node ids and edge keys ("src|tgt|name|ns:pkg") in #graph now. */
const graphState = (page) => page.evaluate(() => ({
  nodes: [...document.querySelectorAll('#graph [data-node-id]')].map((n) => n.getAttribute('data-node-id')),
  edges: [...document.querySelectorAll('#graph [data-edge]')].map((n) => n.getAttribute('data-edge')),
  listShown: !document.querySelector('#list-view').hidden,
  reason: document.querySelector('#view-reason').hidden ? '' : document.querySelector('#view-reason').textContent,
}));

const hasEdge = (edges, src, tgt) => edges.some((e) => e.startsWith(`${src}|${tgt}|`));

/** Fills #link-form from a Link object and submits it. */
async function putFromForm(page, link) {
  const form = page.locator('#link-form');
  const values = {
    source_id: link.source_id, target: link.target, wit_namespace: link.wit_namespace, wit_package: link.wit_package,
    interfaces: (link.interfaces || []).join(','), name: link.name || 'default',
    source_config: (link.source_config || []).join(','), target_config: (link.target_config || []).join(','),
  };
  for (const [name, value] of Object.entries(values)) await form.locator(`[name="${name}"]`).fill(String(value ?? ''));
  await page.evaluate(() => { const r = document.querySelector('#link-form-result'); r.removeAttribute('data-status'); r.textContent = ''; });
  await form.locator('button[type="submit"]').click();
  // Wait for the reply (success or error), not for the "sending…" note.
  await page.waitForFunction(() => {
    const s = document.querySelector('#link-form-result').getAttribute('data-status');
    return s === 'success' || s === 'error';
  }, null, { timeout: 15000 }).catch(() => {});
  return page.evaluate(() => {
    const r = document.querySelector('#link-form-result');
    return { status: r.getAttribute('data-status'), text: r.textContent, visible: !!(r.offsetWidth || r.offsetHeight) };
  });
}

// A fresh profile per run. Playwright refuses --user-data-dir in launch()
// args; launchPersistentContext(dir) is how it passes that flag.
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'spec-host-ui-chromium-'));
let browser;
try {
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1600, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
} catch (e) {
  fs.rmSync(userDataDir, { recursive: true, force: true });
  bail(`could not launch /usr/bin/chromium: ${e.message.split('\n')[0]}`);
}

try {
  const page = browser.pages()[0] || await browser.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${base}/`, { waitUntil: 'domcontentloaded', timeout: 20000 });

  // (a) expected nodes and edges. The page renders asynchronously (snapshot,
  // then stream), so poll until everything expected is there.
  const a = await poll(async () => {
    const g = await graphState(page);
    const missingNodes = expect.nodes.filter((id) => !g.nodes.includes(id));
    const missingEdges = expect.edges.filter(([s, t]) => !hasEdge(g.edges, s, t));
    return { done: missingNodes.length === 0 && missingEdges.length === 0, g, missingNodes, missingEdges };
  }, 15000);
  report(a.done, `graph shows the ${expect.nodes.length} expected nodes and ${expect.edges.length} expected edges`,
    `missing nodes ${JSON.stringify(a.missingNodes)}, missing edges ${JSON.stringify(a.missingEdges)}; ` +
    `graph has ${a.g.nodes.length} nodes, ${a.g.edges.length} edges${a.g.listShown ? ` (list view shown: ${a.g.reason})` : ''}`);

  // (b) a link put from the page's form appears in the graph.
  const b = await putFromForm(page, newLink);
  if (b.status !== 'success') {
    report(false, `link put from the form (${newLink.source_id} -> ${newLink.target}) appears in the graph`,
      `the put was answered ${b.status || 'with nothing'}: ${JSON.stringify(b.text)}`);
  } else {
    const want = `${newLink.source_id}|${newLink.target}|${newLink.name || 'default'}|${newLink.wit_namespace}:${newLink.wit_package}`;
    const r = await poll(async () => {
      const g = await graphState(page);
      return { done: g.edges.includes(want), g };
    }, 15000);
    report(r.done, `link put from the form (${newLink.source_id} -> ${newLink.target}) appears in the graph`,
      `put answered success (${JSON.stringify(b.text)}) but no edge [data-edge="${want}"] within 15 s`);
  }

  // (c) a conflicting put shows wasmCloud's message next to the form.
  const c = await putFromForm(page, conflictLink);
  report(c.status === 'error' && c.text.includes(CONFLICT) && c.visible,
    'conflicting put shows the conflict message next to the form',
    `#link-form-result status=${c.status} visible=${c.visible} text=${JSON.stringify(c.text)}`);

  // (d) a link written elsewhere appears live, without a reload. A marker
  // on window would be gone after any reload.
  await page.evaluate(() => { window.__noReloadMarker = 'still-here'; });
  const [es, et] = externalEdge;
  const before = await graphState(page);
  if (hasEdge(before.edges, es, et)) {
    report(false, `external link ${es} -> ${et} appears without a reload`, 'the edge is already in the graph before the external write');
  } else {
    console.log('READY-FOR-EXTERNAL-WRITE');
    const d = await poll(async () => {
      const g = await graphState(page);
      return { done: hasEdge(g.edges, es, et), g };
    }, 20000);
    const marker = await page.evaluate(() => window.__noReloadMarker);
    report(d.done && marker === 'still-here', `external link ${es} -> ${et} appears without a reload`,
      d.done ? 'the page was reloaded' : 'no such edge within 20 s');
  }

  // (e) full-page screenshot.
  try {
    fs.mkdirSync(path.dirname(path.resolve(screenshot)), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    report(fs.statSync(screenshot).size > 0, `full-page screenshot written to ${screenshot}`);
  } catch (e) {
    report(false, `full-page screenshot written to ${screenshot}`, e.message);
  }

  report(pageErrors.length === 0, 'no uncaught errors in the page', pageErrors.join(' | '));
} catch (e) {
  report(false, 'browser session', e.message.split('\n')[0]);
} finally {
  await browser.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

console.log(failures ? `# ${failures} check(s) failed` : '# all checks passed');
process.exit(failures ? 1 : 0);
