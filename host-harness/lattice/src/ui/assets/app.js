// spec-host ui — live view of a wasmCloud lattice's links.
//
// Talks only to the API in spec-host/src/ui/API.md. Plain ES2020, no build
// step: this file is embedded in the spec-host binary as is.
//
// Safety rule for the whole file: every string from the server (ids, urls,
// errors, config values, messages) is attacker-controlled. It only ever
// reaches the DOM through textContent / setAttribute / createTextNode, never
// innerHTML, so it cannot become markup.
'use strict';

// ------------------------------------------------------------------ DOM helpers

const SVG_NS = 'http://www.w3.org/2000/svg';
const $ = (sel) => document.querySelector(sel);

/** Appends children: strings become text nodes (never parsed as HTML). */
function append(node, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    node.appendChild(k instanceof Node ? k : document.createTextNode(String(k)));
  }
  return node;
}

/** Sets attributes; `on*` keys that are functions become listeners. */
function setAttrs(node, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function' && k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  return node;
}

/** Replaces a node's children. Unlike the native replaceChildren, null /
 * false children are skipped instead of becoming the text "null". */
function fill(node, ...kids) {
  node.replaceChildren();
  return append(node, kids);
}

/** HTML element. */
const el = (tag, attrs, ...kids) => append(setAttrs(document.createElement(tag), attrs), kids);
/** SVG element (must be created in the SVG namespace to render). */
const sv = (tag, attrs, ...kids) => append(setAttrs(document.createElementNS(SVG_NS, tag), attrs), kids);

/** A table from a header row and rows of cells (strings or nodes). */
function table(head, rows, empty) {
  if (rows.length === 0) return el('p', { class: 'muted' }, empty || 'none');
  return el('table', { class: 'grid' },
    el('thead', null, el('tr', null, head.map((h) => el('th', null, h)))),
    el('tbody', null, rows.map((r) => el('tr', null, r.map((c) => el('td', null, c))))));
}

// ------------------------------------------------------------------ state

const MAX_CHANGES = 200;
const GRAPH_LIMIT = 150; // more nodes than this: the list view instead
const CONFLICT_HINT = 'link already exists'; // only used to pick a hint, never to rewrite the message

const S = {
  lattice: '',
  natsConnected: null,     // the server's NATS state (snapshot + `connection` events)
  stream: 'connecting',    // this page's SSE state: connecting | open | lost
  components: new Map(),   // id -> {id, url, links}
  undecodable: new Map(),  // id -> {id, key, error}
  configs: new Map(),      // name -> {name, secret_reference, values}
  hosts: [],               // Status objects, as sent
  changes: [],             // Change objects, oldest first (as the API sends them)
  view: 'graph',           // the user's choice; the page may still fall back to the list
  selected: null,          // id shown in #details
  loadError: null,         // why the last snapshot request failed
  loaded: false,           // a snapshot has arrived at least once
};

/** Normalizes a Link so missing optional fields never break rendering. */
function normLink(l, fallbackSource) {
  const arr = (a) => (Array.isArray(a) ? a.map(String) : []);
  return {
    source_id: String(l.source_id ?? fallbackSource ?? ''),
    target: String(l.target ?? ''),
    name: String(l.name || 'default'),
    wit_namespace: String(l.wit_namespace ?? ''),
    wit_package: String(l.wit_package ?? ''),
    interfaces: arr(l.interfaces),
    source_config: arr(l.source_config),
    target_config: arr(l.target_config),
  };
}

const nsPkg = (l) => `${l.wit_namespace}:${l.wit_package}`;
const linkLabel = (l) => `${nsPkg(l)}/${l.interfaces.join(',')}${l.name !== 'default' ? ` [${l.name}]` : ''}`;
const edgeKey = (l) => `${l.source_id}|${l.target}|${l.name}|${nsPkg(l)}`;
const isSecretName = (name) => String(name).startsWith('SECRET');

function setComponent(c) {
  const id = String(c.id);
  S.components.set(id, { id, url: String(c.url ?? ''), links: (c.links || []).map((l) => normLink(l, id)) });
  S.undecodable.delete(id); // a spec that decodes replaces a broken one
}

function setUndecodable(u) {
  const id = String(u.id);
  S.undecodable.set(id, { id, key: String(u.key ?? ''), error: String(u.error ?? '') });
  S.components.delete(id);
}

function addChange(c) {
  // Dedupe: after a snapshot, buffered `change` events may repeat its tail.
  const key = `${c.at}|${c.kind}|${c.text}`;
  if (S.changes.some((x) => `${x.at}|${x.kind}|${x.text}` === key)) return;
  S.changes.push({ at: String(c.at ?? ''), kind: String(c.kind ?? ''), text: String(c.text ?? '') });
  if (S.changes.length > MAX_CHANGES) S.changes.splice(0, S.changes.length - MAX_CHANGES);
}

function applySnapshot(snap) {
  S.lattice = String(snap.lattice ?? '');
  if (typeof snap.connected === 'boolean') S.natsConnected = snap.connected;
  S.components.clear();
  S.undecodable.clear();
  S.configs.clear();
  (snap.components || []).forEach(setComponent);
  (snap.undecodable || []).forEach(setUndecodable);
  (snap.configs || []).forEach((c) => S.configs.set(String(c.name), c));
  S.hosts = Array.isArray(snap.hosts) ? snap.hosts : [];
  S.changes = [];
  (snap.changes || []).forEach(addChange);
  invalidate('all');
  // The open details may predate this snapshot (e.g. opened from the URL
  // before it arrived, or while the stream was down): refresh them.
  if (S.selected) refreshDetailsSoon();
}

/** Applies one SSE event to the state. Unknown events are ignored. */
function applyEvent(name, d) {
  switch (name) {
    case 'spec': setComponent(d); invalidate('graph'); touchDetails(d.id, d.links); break;
    case 'spec-deleted': S.components.delete(String(d.id)); S.undecodable.delete(String(d.id)); invalidate('graph'); touchDetails(d.id, []); break;
    case 'undecodable': setUndecodable(d); invalidate('graph'); touchDetails(d.id, []); break;
    case 'config': S.configs.set(String(d.name), d); invalidate('configs'); break;
    case 'config-deleted': S.configs.delete(String(d.name)); invalidate('configs'); break;
    case 'hosts': {
      const before = providerKey();
      S.hosts = Array.isArray(d) ? d : [];
      invalidate('hosts');
      if (providerKey() !== before) invalidate('graph'); // node kinds depend on providers
      break;
    }
    case 'change': addChange(d); invalidate('changes'); break;
    case 'connection': S.natsConnected = !!d.connected; invalidate('status'); break;
    default: break;
  }
}

// ------------------------------------------------------------------ snapshot + stream

// While a snapshot request is in flight, events are buffered and replayed on
// top of it: the snapshot may predate them, and replaying in order always
// ends at the latest state (spec events replace, they do not patch).
// A server that listens beyond loopback wants its token on every API
// request: the URL it printed carries it as ?token=…
const TOKEN = new URLSearchParams(location.search).get('token');
const AUTH = TOKEN ? { authorization: `Bearer ${TOKEN}` } : {};

let eventBuffer = null;
let snapshotSeq = 0;
let snapshotRetry = null;

async function loadSnapshot() {
  const seq = ++snapshotSeq;
  if (!eventBuffer) eventBuffer = [];
  clearTimeout(snapshotRetry);
  try {
    const res = await fetch('/api/snapshot', { cache: 'no-store', headers: AUTH });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const snap = await res.json();
    if (seq !== snapshotSeq) return; // a newer request owns the buffer now
    S.loadError = null;
    S.loaded = true;
    applySnapshot(snap);
    const pending = eventBuffer;
    eventBuffer = null;
    pending.forEach(([n, d]) => applyEvent(n, d));
  } catch (err) {
    if (seq !== snapshotSeq) return;
    S.loadError = `could not load /api/snapshot (${err.message}); retrying`;
    invalidate('status');
    snapshotRetry = setTimeout(loadSnapshot, 3000);
  }
}

const EVENT_NAMES = ['spec', 'spec-deleted', 'undecodable', 'config', 'config-deleted', 'hosts', 'change', 'connection'];
let source = null;
let reopenTimer = null;
let reopenDelay = 1000;

function openStream() {
  clearTimeout(reopenTimer);
  if (source) source.close();
  const es = new EventSource(TOKEN ? `/api/events?token=${encodeURIComponent(TOKEN)}` : '/api/events');
  source = es;
  es.onopen = () => {
    reopenDelay = 1000;
    S.stream = 'open';
    invalidate('status');
    // Whatever happened while we were away is only in the snapshot.
    loadSnapshot();
  };
  es.onerror = () => {
    if (source !== es) return;
    S.stream = 'lost';
    invalidate('status');
    // EventSource retries by itself unless the server answered with an error
    // status or a wrong content type (readyState CLOSED): then we reopen.
    if (es.readyState === EventSource.CLOSED) {
      reopenTimer = setTimeout(openStream, reopenDelay);
      reopenDelay = Math.min(reopenDelay * 2, 15000);
    }
  };
  for (const name of EVENT_NAMES) {
    es.addEventListener(name, (e) => {
      let data;
      try { data = JSON.parse(e.data); } catch (_) { console.warn('bad event data', name, e.data); return; }
      if (eventBuffer) {
        eventBuffer.push([name, data]);
        if (eventBuffer.length > 5000) eventBuffer.shift(); // the snapshot covers the oldest
      } else {
        applyEvent(name, data);
      }
    });
  }
}

// ------------------------------------------------------------------ rendering schedule

// Changes are coalesced into one render per animation frame, so a burst of
// events (hundreds of specs at start-up) costs one layout.
const dirty = new Set();
let frame = 0;
function invalidate(what) {
  if (what === 'all') ['status', 'graph', 'configs', 'hosts', 'changes'].forEach((w) => dirty.add(w));
  else dirty.add(what);
  if (!frame) frame = requestAnimationFrame(renderDirty);
}

function renderDirty() {
  frame = 0;
  const d = new Set(dirty);
  dirty.clear();
  if (d.has('status')) renderStatus();
  if (d.has('graph')) renderLinks();
  if (d.has('configs')) renderConfigs();
  if (d.has('hosts')) renderHosts();
  if (d.has('changes')) renderChanges();
}

// ------------------------------------------------------------------ status + banner

function renderStatus() {
  $('#lattice-name').textContent = `lattice: ${S.lattice || '…'}`;
  const nats = $('#nats-state');
  nats.dataset.state = S.natsConnected === null ? 'unknown' : S.natsConnected ? 'ok' : 'bad';
  nats.textContent = `NATS: ${S.natsConnected === null ? '…' : S.natsConnected ? 'connected' : 'disconnected'}`;
  const st = $('#stream-state');
  st.dataset.state = S.stream === 'open' ? 'ok' : S.stream === 'lost' ? 'bad' : 'unknown';
  st.textContent = `stream: ${S.stream === 'lost' ? 'lost' : S.stream}`;

  const banner = $('#connection-banner');
  let text = '';
  let kind = '';
  if (S.stream === 'lost') {
    text = 'connection lost — reconnecting… (the view shows the last known state)';
    kind = 'lost';
  } else if (S.loadError) {
    text = S.loadError;
    kind = 'lost';
  } else if (S.natsConnected === false) {
    text = 'the spec-host server has lost its NATS connection — the view may be stale until it reconnects';
    kind = 'nats';
  }
  banner.hidden = !text;
  banner.textContent = text;
  banner.dataset.kind = kind;
}

// ------------------------------------------------------------------ graph model

function providerSet() {
  const set = new Set();
  for (const h of S.hosts) if (h && Array.isArray(h.providers)) h.providers.forEach((p) => set.add(String(p)));
  return set;
}
const providerKey = () => [...providerSet()].sort().join('\n');

/** Node kind. An undecodable spec is flagged first (it must stand out);
 * an id in some host's `providers` is a provider even when it also has a
 * spec (providers such as httpserver are link sources); then component;
 * anything else is a target of unknown kind. */
function kindOf(id, providers) {
  if (S.undecodable.has(id)) return 'undecodable';
  if (providers.has(id)) return 'provider';
  if (S.components.has(id)) return 'component';
  return 'target';
}

/** All nodes and links, then the filtered subset. */
function model() {
  const providers = providerSet();
  const links = [];
  for (const c of S.components.values()) links.push(...c.links);
  const ids = new Set([...S.components.keys(), ...S.undecodable.keys(), ...providers]);
  links.forEach((l) => { ids.add(l.source_id); ids.add(l.target); });

  const f = currentFilters();
  const linkFiltered = !!(f.nspkg || f.name);
  const idMatch = (id) => !f.id || id.toLowerCase().includes(f.id);
  const shownLinks = links.filter((l) =>
    (!f.nspkg || nsPkg(l) === f.nspkg) &&
    (!f.name || l.name === f.name) &&
    (idMatch(l.source_id) || idMatch(l.target)));
  // A node shows when it matches the id filter (and no link filter is set),
  // or when it is an endpoint of a link that passes: filtered links keep
  // their context.
  const shown = new Set();
  if (!linkFiltered) for (const id of ids) if (idMatch(id)) shown.add(id);
  shownLinks.forEach((l) => { shown.add(l.source_id); shown.add(l.target); });

  const kinds = new Map();
  for (const id of ids) kinds.set(id, kindOf(id, providers));
  return { ids, links, kinds, shown: [...shown].sort(), shownLinks };
}

function currentFilters() {
  return {
    id: $('#filter-id').value.trim().toLowerCase(),
    nspkg: $('#filter-nspkg').value,
    name: $('#filter-name').value,
  };
}

/** Refills a <select> with sorted values, keeping the current choice. */
function fillSelect(select, values) {
  const current = select.value;
  // Rebuilding closes an open dropdown: only do it when the choices change.
  const key = `${current}\n${[...values].sort().join('\n')}`;
  if (select.dataset.key === key) return;
  select.dataset.key = key;
  const opts = [el('option', { value: '' }, 'any'), ...[...values].sort().map((v) => el('option', { value: v }, v))];
  if (current && !values.has(current)) opts.push(el('option', { value: current }, `${current} (none now)`));
  select.replaceChildren(...opts);
  select.value = current;
}

// ------------------------------------------------------------------ layout

const NODE_W = 176;
const NODE_H = 34;
const COL_W_MAX = 440; // ~250px between columns: one-line edge labels
const COL_W_MIN = 300; // narrower than this and the labels stop being readable: scroll instead
const ROW_H = 64;
const PAD = 24;
const LINE_H = 13;     // one line of edge label
const CHAR_W = 6.2;    // average width of an 11px label character

/** Deterministic layered layout: link sources in columns by depth (longest
 * path after dropping cycle-closing edges), providers and other targets
 * without outbound links in the rightmost column, rows ordered by a few
 * barycenter sweeps with ids breaking ties. Same input, same picture. */
function layout(nodeIds, links, kinds, availWidth) {
  const out = new Map(nodeIds.map((id) => [id, []]));
  const inDeg = new Map(nodeIds.map((id) => [id, 0]));
  for (const l of links) {
    if (l.source_id === l.target) continue;
    out.get(l.source_id).push(l.target);
    inDeg.set(l.target, inDeg.get(l.target) + 1);
  }
  for (const list of out.values()) list.sort();

  // DFS from roots first (in id order), then from whatever cycles remain:
  // edges to a node on the current path are back edges and are ignored.
  const state = new Map(); // 1 = on path, 2 = done
  const order = [];        // reverse post-order = topological order
  const back = new Set();
  const visit = (start) => {
    const stack = [[start, 0]];
    state.set(start, 1);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const kids = out.get(top[0]);
      if (top[1] < kids.length) {
        const next = kids[top[1]++];
        if (state.get(next) === 1) back.add(`${top[0]}\n${next}`);
        else if (!state.has(next)) { state.set(next, 1); stack.push([next, 0]); }
      } else {
        state.set(top[0], 2);
        order.push(top[0]);
        stack.pop();
      }
    }
  };
  nodeIds.filter((id) => inDeg.get(id) === 0).forEach((id) => state.has(id) || visit(id));
  nodeIds.forEach((id) => state.has(id) || visit(id));
  order.reverse();

  const col = new Map(nodeIds.map((id) => [id, 0]));
  for (const u of order) {
    for (const v of out.get(u)) {
      if (!back.has(`${u}\n${v}`)) col.set(v, Math.max(col.get(v), col.get(u) + 1));
    }
  }
  // Providers / unknown targets that link nowhere go to the rightmost column.
  const sink = (id) => (kinds.get(id) === 'provider' || kinds.get(id) === 'target') && out.get(id).length === 0;
  let maxCol = -1;
  nodeIds.forEach((id) => { if (!sink(id)) maxCol = Math.max(maxCol, col.get(id)); });
  nodeIds.forEach((id) => { if (sink(id)) col.set(id, maxCol + 1); });
  // Pull sources right, next to their nearest target (sinks first): a
  // component that only talks to providers then sits beside them instead
  // of sending a long edge across the middle columns.
  for (let i = order.length - 1; i >= 0; i--) {
    const u = order[i];
    const succ = out.get(u).filter((v) => !back.has(`${u}\n${v}`));
    if (succ.length && !sink(u)) col.set(u, Math.max(col.get(u), Math.min(...succ.map((v) => col.get(v))) - 1));
  }

  // Columns, initially by kind then id, then barycenter sweeps.
  const rank = { component: 0, undecodable: 1, provider: 2, target: 3 };
  const cols = [];
  nodeIds.forEach((id) => { (cols[col.get(id)] = cols[col.get(id)] || []).push(id); });
  const columns = cols.filter(Boolean);
  columns.forEach((c) => c.sort((a, b) => rank[kinds.get(a)] - rank[kinds.get(b)] || (a < b ? -1 : a > b ? 1 : 0)));
  const neighbours = new Map(nodeIds.map((id) => [id, []]));
  for (const l of links) {
    if (l.source_id === l.target) continue;
    neighbours.get(l.source_id).push(l.target);
    neighbours.get(l.target).push(l.source_id);
  }
  const pos = new Map();
  const index = () => columns.forEach((c) => c.forEach((id, i) => pos.set(id, i)));
  index();
  for (let sweep = 0; sweep < 6; sweep++) {
    const seq = sweep % 2 === 0 ? columns : [...columns].reverse();
    for (const c of seq) {
      const bary = new Map();
      for (const id of c) {
        const ns = neighbours.get(id);
        bary.set(id, ns.length ? ns.reduce((s, n) => s + pos.get(n), 0) / ns.length : pos.get(id));
      }
      c.sort((a, b) => bary.get(a) - bary.get(b) || (a < b ? -1 : a > b ? 1 : 0));
      c.forEach((id, i) => pos.set(id, i));
    }
  }

  // Column width: fit the pane when possible, within readable bounds.
  const fit = columns.length > 1 ? Math.floor((availWidth - 2 * PAD - NODE_W) / (columns.length - 1)) : COL_W_MAX;
  const colW = Math.max(COL_W_MIN, Math.min(COL_W_MAX, fit));
  const xy = new Map();
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  columns.forEach((c, ci) => {
    const offset = ((tallest - c.length) * ROW_H) / 2; // centre short columns
    c.forEach((id, ri) => xy.set(id, { x: PAD + ci * colW, y: PAD + offset + ri * ROW_H, col: ci }));
  });
  return { xy, gap: colW - NODE_W, width: PAD * 2 + (columns.length - 1) * colW + NODE_W, height: PAD * 2 + tallest * ROW_H };
}

// ------------------------------------------------------------------ graph + list rendering

function renderLinks() {
  const m = model();
  // Filter choices come from every link, not just the visible ones.
  fillSelect($('#filter-nspkg'), new Set(m.links.map(nsPkg)));
  fillSelect($('#filter-name'), new Set(m.links.map((l) => l.name)));
  $('#counts').textContent = `${m.shown.length}/${m.ids.size} nodes · ${m.shownLinks.length}/${m.links.length} links · ${S.undecodable.size} undecodable`;

  const tooMany = m.shown.length > GRAPH_LIMIT;
  const useList = S.view === 'list' || tooMany;
  const reason = $('#view-reason');
  reason.hidden = !useList;
  reason.textContent = S.view === 'list'
    ? 'List view (chosen). Switch to Graph to draw the filtered links.'
    : `${m.shown.length} nodes match the filters — more than ${GRAPH_LIMIT} are not drawn as a graph, so the links are listed instead. Narrow the filters (id, namespace:package, link name) to ${GRAPH_LIMIT} nodes or fewer to get the graph back.`;
  $('#view-graph').setAttribute('aria-pressed', String(S.view === 'graph'));
  $('#view-list').setAttribute('aria-pressed', String(S.view === 'list'));
  $('#graph').hidden = useList;
  $('#list-view').hidden = !useList;
  $('#label-note').textContent = '';
  if (useList) {
    $('#graph').replaceChildren();
    renderList(m);
  } else {
    $('#list-view').replaceChildren();
    renderGraph(m);
  }
}

function renderGraph(m) {
  const box = $('#graph');
  if (m.shown.length === 0) {
    const why = !S.loaded ? 'loading…' : m.ids.size ? 'No node matches the filters.' : 'The lattice has no specs yet.';
    fill(box, el('p', { class: 'muted empty' }, why));
    return;
  }
  const { xy, gap, width, height } = layout(m.shown, m.shownLinks, m.kinds, box.clientWidth || 1000);
  const maxChars = Math.max(12, Math.floor((gap - 20) / CHAR_W));
  const showLabels = $('#show-labels').checked;
  const svg = sv('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'link graph' },
    sv('defs', null,
      sv('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
        sv('path', { d: 'M0,0 L10,5 L0,10 z', class: 'arrowhead' }))));

  // Several links between one pair (other names / packages) fan out a little.
  const pairCount = new Map();
  const pairIndex = new Map();
  const outDeg = new Map();
  const inDeg = new Map();
  m.shownLinks.forEach((l) => {
    const k = `${l.source_id}\n${l.target}`;
    pairCount.set(k, (pairCount.get(k) || 0) + 1);
    outDeg.set(l.source_id, (outDeg.get(l.source_id) || 0) + 1);
    inDeg.set(l.target, (inDeg.get(l.target) || 0) + 1);
  });

  const edgeLayer = sv('g', { class: 'edges' });
  const labelLayer = sv('g', { class: 'labels' });
  const labels = [];
  const sorted = [...m.shownLinks].sort((a, b) => (edgeKey(a) < edgeKey(b) ? -1 : 1));
  for (const l of sorted) {
    const a = xy.get(l.source_id);
    const b = xy.get(l.target);
    const k = `${l.source_id}\n${l.target}`;
    const i = pairIndex.get(k) || 0;
    pairIndex.set(k, i + 1);
    const fan = (i - (pairCount.get(k) - 1) / 2) * 7;
    const lines = labelLines(l, maxChars);
    const end = (outDeg.get(l.source_id) || 0) <= (inDeg.get(l.target) || 0) ? 'source' : 'target';
    const { d, lx, ly, anchor, group } = edgePath(a, b, fan, end, lines.length);
    const selected = S.selected !== null && (l.source_id === S.selected || l.target === S.selected);
    const g = sv('g', { class: `edge${selected ? ' selected' : ''}`, 'data-edge': edgeKey(l), tabindex: 0,
      onclick: () => prefillDelete(l),
      onkeydown: (e) => { if (e.key === 'Enter') prefillDelete(l); } },
    sv('title', null, `${l.source_id} → ${l.target}\n${linkLabel(l)}\nname: ${l.name}` +
      (l.source_config.length ? `\nsource_config: ${l.source_config.join(', ')}` : '') +
      (l.target_config.length ? `\ntarget_config: ${l.target_config.join(', ')}` : '') + '\n(click to prefill delete)'),
    sv('path', { d, class: 'edge-hit' }),
    sv('path', { d, class: 'edge-line', 'marker-end': 'url(#arrow)' }));
    edgeLayer.appendChild(g);
    if (showLabels) labels.push({ l, x: lx, y: ly, lines, anchor, group, selected });
  }
  const { placed, dropped } = placeLabels(labels);
  $('#label-note').textContent = dropped
    ? `${dropped} edge label${dropped === 1 ? '' : 's'} left out where labels would overlap: hover an edge, or click a node to label its links.` : '';
  placed.forEach(({ l, x, y, lines, anchor, selected }) => {
    // Labels are clickable like their edge, and carry the untruncated text.
    labelLayer.appendChild(sv('text', { x, y, class: `edge-label${selected ? ' selected' : ''}`, 'text-anchor': anchor, 'data-edge-label': edgeKey(l),
      onclick: () => prefillDelete(l) },
    sv('title', null, `${l.source_id} → ${l.target}: ${linkLabel(l)}`),
    lines.map((line, i) => sv('tspan', { x, dy: i ? LINE_H : 0 }, line))));
  });

  const nodeLayer = sv('g', { class: 'nodes' });
  for (const id of m.shown) {
    const p = xy.get(id);
    const kind = m.kinds.get(id);
    nodeLayer.appendChild(nodeGlyph(id, kind, p));
  }
  svg.append(edgeLayer, nodeLayer, labelLayer);
  box.replaceChildren(svg);
}

/** An edge label on one line, or on two (`ns:pkg/` then `ifaces [name]`)
 * when the gap between columns is too narrow; the full text is the title. */
function labelLines(l, maxChars) {
  const full = linkLabel(l);
  if (full.length <= maxChars) return [full];
  return [truncate(`${nsPkg(l)}/`, maxChars), truncate(full.slice(nsPkg(l).length + 1), maxChars)];
}

/** Cubic edge from the source's right side into the target's left side.
 * Its label goes at the less crowded end (`end` = 'source' | 'target'):
 * beside the source when the target has more inbound edges than the source
 * has outbound ones (fan-in to a provider), else beside the target, on the
 * side of the line the curve does not turn to. `group` names the gap the
 * label sits in (labels at either end of one gap can meet), for placeLabels. */
function edgePath(a, b, fan, end, lines) {
  const sx = a.x + NODE_W;
  const sy = a.y + NODE_H / 2 + fan;
  const up = (lines - 1) * LINE_H; // extra height of a two-line label
  if (a === b) { // self link: a small loop on the right
    const d = `M${sx},${sy - 6} C${sx + 50},${sy - 40} ${sx + 50},${sy + 40} ${sx},${sy + 6}`;
    return { d, lx: sx + 58, ly: sy + 4, anchor: 'start', group: `g${a.col}` };
  }
  const ty = b.y + NODE_H / 2 + fan;
  if (b.col > a.col) {
    const tx = b.x;
    const c = Math.max(60, (tx - sx) / 2);
    const d = `M${sx},${sy} C${sx + c},${sy} ${tx - c},${ty} ${tx},${ty}`;
    if (end === 'source') {
      return { d, lx: sx + 8, ly: ty >= sy ? sy - 5 - up : sy + 14, anchor: 'start', group: `g${a.col}` };
    }
    return { d, lx: tx - 12, ly: sy <= ty ? ty + 14 : ty - 5 - up, anchor: 'end', group: `g${b.col - 1}` };
  }
  // Same column or backwards (cycles): leave right, come back into the
  // target's right side along a wide curve.
  const tx = b.x + NODE_W;
  const bend = 90 + 30 * Math.abs(a.col - b.col);
  const d = `M${sx},${sy} C${sx + bend},${sy} ${tx + bend},${ty} ${tx},${ty}`;
  return { d, lx: Math.max(sx, tx) + bend * 0.75, ly: (sy + ty) / 2, anchor: 'middle', group: `b${a.col}` };
}

/** Places labels without overlap. Labels in one gap (`group`) may not
 * overlap vertically; a label moves down past the ones placed before it, but
 * never more than MAX_DRIFT from its edge (it would label the wrong edge):
 * then it is left out (its edge's tooltip has the text). The selected node's
 * labels are placed first, so they always show. Deterministic: the input is
 * in edge-key order and the sort is stable. */
const MAX_DRIFT = 2 * LINE_H;
function placeLabels(labels) {
  const taken = new Map(); // group -> [[top, bottom]…]
  const placed = [];
  let dropped = 0;
  const order = [...labels].sort((a, b) => (b.selected - a.selected) || a.y - b.y);
  for (const lb of order) {
    const h = lb.lines.length * LINE_H;
    if (!taken.has(lb.group)) taken.set(lb.group, []);
    const spans = taken.get(lb.group);
    const want = lb.y - LINE_H + 3; // top of the first line
    let top = want;
    for (let guard = 0; guard < 100; guard++) {
      const hit = spans.find(([t, b]) => top < b && top + h > t);
      if (!hit) break;
      top = hit[1];
    }
    if (top - want > MAX_DRIFT && !lb.selected) { dropped++; continue; }
    spans.push([top, top + h + 1]);
    placed.push({ ...lb, y: top + LINE_H - 3 });
  }
  return { placed, dropped };
}

const truncate = (s, n) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);
const GLYPH = { component: 'C', provider: 'P', target: '?', undecodable: '!' };

function nodeGlyph(id, kind, p) {
  const c = S.components.get(id);
  const u = S.undecodable.get(id);
  let tip = `${id}\nkind: ${kind === 'target' ? 'other target' : kind}`;
  if (c && c.url) tip += `\nurl: ${c.url}`;
  if (u) tip += `\nundecodable spec (${u.key}): ${u.error}`;
  return sv('g', {
    class: `node kind-${kind}${S.selected === id ? ' selected' : ''}`,
    'data-node-id': id, 'data-kind': kind, transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'button',
    'aria-label': `${kind} ${id}`,
    onclick: () => openDetailsHash(id),
    onkeydown: (e) => { if (e.key === 'Enter') openDetailsHash(id); },
  },
  sv('title', null, tip),
  sv('rect', { width: NODE_W, height: NODE_H, rx: kind === 'provider' ? NODE_H / 2 : 5, class: 'node-box' }),
  sv('circle', { cx: 17, cy: NODE_H / 2, r: 10, class: 'node-badge' }),
  sv('text', { x: 17, y: NODE_H / 2 + 4, 'text-anchor': 'middle', class: 'node-badge-text' }, GLYPH[kind]),
  sv('text', { x: 33, y: NODE_H / 2 + 4, class: 'node-label' }, truncate(id, 22)));
}

function renderList(m) {
  const idButton = (id) => el('button', { type: 'button', class: 'linkish', onclick: () => openDetailsHash(id) }, id);
  const cfg = (names) => names.map((n, i) => [i ? ', ' : '', isSecretName(n) ? el('span', { class: 'secret', title: 'secret reference' }, n) : n]);
  const rows = [...m.shownLinks]
    .sort((a, b) => (edgeKey(a) < edgeKey(b) ? -1 : 1))
    .map((l) => [idButton(l.source_id), idButton(l.target), `${nsPkg(l)}/${l.interfaces.join(',')}`, l.name,
      cfg(l.source_config), cfg(l.target_config),
      el('button', { type: 'button', class: 'small', onclick: () => prefillDelete(l) }, 'delete…')]);
  const flagged = [...S.undecodable.values()].filter((u) => m.shown.includes(u.id));
  fill($('#list-view'),
    flagged.length ? el('div', { class: 'flagged' }, el('strong', null, 'Undecodable specs: '),
      flagged.map((u) => el('div', null, idButton(u.id), ` (${u.key}): `, el('span', { class: 'error-text' }, u.error)))) : null,
    table(['source', 'target', 'interface', 'name', 'source config', 'target config', ''], rows, 'No link matches the filters.'));
}

// ------------------------------------------------------------------ details panel

let detailsSeq = 0;
let detailsTimer = null;

/** Opens details through the URL so the view can be linked and reloaded. */
function openDetailsHash(id) {
  const hash = `#/component/${encodeURIComponent(id)}`;
  if (location.hash === hash) showDetails(id); else location.hash = hash;
}

function readHash() {
  const m = /^#\/component\/(.*)$/.exec(location.hash);
  if (!m) return null;
  try { return decodeURIComponent(m[1]); } catch (_) { return m[1]; }
}

function onHash() {
  const id = readHash();
  if (id === null) closeDetails(); else showDetails(id);
}

function closeDetails() {
  S.selected = null;
  detailsSeq++;
  fill($('#details'), el('h2', null, 'Details'), el('p', { class: 'muted' }, 'Click a node (or open #/component/<id>).'));
  invalidate('graph');
}

/** Re-fetches the open details when a spec that touches it changes. */
function touchDetails(id, links) {
  if (!S.selected) return;
  const touches = String(id) === S.selected || (links || []).some((l) => l && l.target === S.selected);
  if (touches) refreshDetailsSoon();
}

function refreshDetailsSoon() {
  clearTimeout(detailsTimer);
  detailsTimer = setTimeout(() => S.selected && showDetails(S.selected, true), 300);
}

async function showDetails(id, quiet) {
  const seq = ++detailsSeq;
  S.selected = id;
  invalidate('graph');
  const panel = $('#details');
  const header = el('div', { class: 'details-head' },
    el('h2', null, 'Details'),
    el('button', { type: 'button', class: 'small', onclick: () => { history.pushState(null, '', location.pathname + location.search); closeDetails(); } }, 'close'));
  const m = model();
  const kind = m.kinds.get(id);
  const local = [el('p', { class: 'details-id' }, el('code', null, id), ' ', kind ? el('span', { class: `badge kind-${kind}` }, kind === 'target' ? 'other target' : kind) : null)];
  const u = S.undecodable.get(id);
  if (u) local.push(el('p', { class: 'error-text' }, `Undecodable spec ${u.key}: ${u.error}`));
  if (!quiet) fill(panel, header, ...local, el('p', { class: 'muted' }, 'loading…'));

  let status = 0;
  let body = null;
  try {
    const res = await fetch(`/api/components/${encodeURIComponent(id)}`, { cache: 'no-store', headers: AUTH });
    status = res.status;
    body = await res.json().catch(() => null);
  } catch (err) {
    body = { error: `request failed: ${err.message}` };
  }
  if (seq !== detailsSeq) return; // another node was opened meanwhile
  if (status !== 200 || !body || body.error) {
    const msg = (body && body.error) || `HTTP ${status}`;
    fill(panel, header, ...local, el('p', { class: 'error-text', 'data-status': String(status) }, `${status ? `${status}: ` : ''}${msg}`));
    return;
  }
  const linkRows = (links, other) => links.map(normLink).map((l) => [
    el('button', { type: 'button', class: 'linkish', onclick: () => openDetailsHash(l[other]) }, l[other]),
    linkLabel(l),
    el('button', { type: 'button', class: 'small', title: 'prefill the delete form', onclick: () => prefillDelete(l) }, '✕')]);
  fill(panel, header, ...local,
    body.url ? el('p', null, 'url: ', el('code', null, String(body.url))) : null,
    el('h3', null, `Outbound links (${(body.outbound || []).length})`),
    table(['target', 'interface [name]', ''], linkRows(body.outbound || [], 'target')),
    el('h3', null, `Inbound links (${(body.inbound || []).length})`),
    table(['source', 'interface [name]', ''], linkRows(body.inbound || [], 'source_id')),
    el('h3', null, 'Import links'),
    table(['name', 'interface', 'target'], (body.import_links || []).map((r) => [String(r.name ?? ''), String(r.interface ?? ''), String(r.target ?? '')])));
}

// ------------------------------------------------------------------ configs, hosts, changes

function renderConfigs() {
  const rows = [...S.configs.values()]
    .sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1))
    .map((c) => {
      // Secret references never show values, even if a server sent some.
      const secret = c.secret_reference === true || isSecretName(c.name);
      const values = secret ? el('em', { class: 'secret' }, 'secret reference')
        : el('dl', { class: 'kv' }, Object.entries(c.values || {}).map(([k, v]) => [el('dt', null, k), el('dd', null, typeof v === 'string' ? v : JSON.stringify(v))]));
      return [el('code', null, String(c.name)), values];
    });
  fill($('#configs'), table(['name', 'values'], rows, 'no configs'));
}

const KNOWN_HOST_FIELDS = new Set(['host_id', 'lattice', 'bucket', 'plugin', 'providers', 'links', 'components', 'uptime_secs',
  'requests_ok', 'requests_failed', 'swaps', 'swaps_refused', 'busy', 'in_flight', 'pool_size', 'pending_changes', 'caught_up', 'links_restored', 'wasmcloud_hosts', 'rollout']);

const fmt = (v) => (v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));
function uptime(s) {
  if (typeof s !== 'number') return '—';
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${s % 60}s`;
}
const kv = (pairs) => el('dl', { class: 'kv' }, pairs.map(([k, v]) => [el('dt', null, k), el('dd', null, v)]));

function renderHosts() {
  const cards = S.hosts.filter((h) => h && typeof h === 'object').map((h) => {
    // A host too busy to report sends only {host_id, busy: true}.
    if (h.busy === true && !h.plugin) return el('div', { class: 'card' }, el('h3', null, fmt(h.host_id)), el('p', { class: 'warn-text' }, 'busy: too busy to report its status'));
    const plugin = h.plugin || {};
    const digest = String(plugin.digest || '').replace(/^sha256:/, '');
    const rollout = h.rollout && typeof h.rollout === 'object'
      ? [el('h4', null, 'rollout'), kv(Object.entries(h.rollout).map(([k, v]) => [k, fmt(v)]))] : [];
    const extra = Object.entries(h).filter(([k]) => !KNOWN_HOST_FIELDS.has(k));
    return el('div', { class: 'card', 'data-host-id': fmt(h.host_id) },
      el('h3', null, fmt(h.host_id)),
      kv([
        ['plugin', [fmt(plugin.version), ' ', el('code', { title: `sha256 ${digest}${plugin.path ? `\n${plugin.path}` : ' (bundled)'}` }, digest.slice(0, 12) || '—')]],
        ['providers', Array.isArray(h.providers) && h.providers.length ? h.providers.join(', ') : 'none'],
        ['links / components', `${fmt(h.links)} / ${fmt(h.components)}`],
        ['requests ok / failed', [fmt(h.requests_ok), ' / ', el('span', { class: h.requests_failed ? 'warn-text' : '' }, fmt(h.requests_failed))]],
        ['busy', fmt(h.busy)],
        ['in flight / pool', `${fmt(h.in_flight)} / ${fmt(h.pool_size)}`],
        ['pending changes', el('span', { class: h.pending_changes ? 'warn-text' : '' }, fmt(h.pending_changes))],
        ['caught up', el('span', { class: h.caught_up === false ? 'warn-text' : '' }, fmt(h.caught_up))],
        ['links restored', fmt(h.links_restored)],
        ['wasmCloud hosts seen', fmt(h.wasmcloud_hosts)],
        ['swaps (refused)', `${fmt(h.swaps)} (${fmt(h.swaps_refused)})`],
        ['uptime', uptime(h.uptime_secs)],
      ]),
      rollout,
      extra.length ? [el('h4', null, 'other'), kv(extra.map(([k, v]) => [k, fmt(v)]))] : null);
  });
  fill($('#hosts'), ...(cards.length ? cards : [el('p', { class: 'muted' }, 'No spec-host serve answers for this lattice.')]));
}

function renderChanges() {
  const items = [...S.changes].reverse().map((c) => {
    const d = new Date(c.at);
    const time = Number.isNaN(d.getTime()) ? c.at : d.toLocaleTimeString();
    return el('li', { 'data-kind': c.kind }, el('time', { datetime: c.at, title: c.at }, time), ' ',
      el('span', { class: 'badge' }, c.kind), ' ', c.text);
  });
  fill($('#changes'), ...(items.length ? items : [el('li', { class: 'muted' }, 'nothing yet')]));
}

// ------------------------------------------------------------------ forms

const list = (s) => String(s || '').split(',').map((x) => x.trim()).filter(Boolean);

function prefillDelete(l) {
  const f = $('#delete-form');
  f.elements.source_id.value = l.source_id;
  f.elements.wit_namespace.value = l.wit_namespace;
  f.elements.wit_package.value = l.wit_package;
  f.elements.name.value = l.name;
  showResult($('#delete-form-result'), null, `prefilled from ${l.source_id} → ${l.target} (${linkLabel(l)})`);
  f.scrollIntoView({ block: 'nearest', behavior: 'smooth' });
  f.elements.source_id.focus({ preventScroll: true });
}

/** ok: true / false / null (neutral note). The message is shown verbatim. */
function showResult(node, ok, message) {
  node.dataset.status = ok === null ? 'info' : ok ? 'success' : 'error';
  node.replaceChildren(ok === null ? '' : el('strong', null, ok ? 'ok: ' : 'refused: '), el('span', { class: 'message' }, message));
}

async function postJson(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...AUTH }, body: JSON.stringify(body) });
  const data = await res.json().catch(() => null);
  if (data && typeof data.success === 'boolean') return data;
  return { success: false, message: (data && (data.message || data.error)) || `HTTP ${res.status} ${res.statusText}` };
}

async function submitForm(form, resultNode, url, body, okText) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  showResult(resultNode, null, 'sending…');
  try {
    const reply = await postJson(url, body);
    const message = reply.message || (reply.success ? okText : 'failed (no message)');
    showResult(resultNode, reply.success, message);
    // The stream brings the change; without a stream, fetch it.
    if (reply.success && S.stream !== 'open') setTimeout(loadSnapshot, 500);
  } catch (err) {
    showResult(resultNode, false, `request failed: ${err.message}`);
  } finally {
    button.disabled = false;
  }
}

function wireForms() {
  $('#link-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const link = {
      source_id: f.source_id.value.trim(),
      target: f.target.value.trim(),
      name: f.name.value.trim() || 'default',
      wit_namespace: f.wit_namespace.value.trim(),
      wit_package: f.wit_package.value.trim(),
      interfaces: list(f.interfaces.value),
      source_config: list(f.source_config.value),
      target_config: list(f.target_config.value),
    };
    submitForm(e.target, $('#link-form-result'), '/api/links', link,
      `link put: ${link.source_id} → ${link.target} (${linkLabel(normLink(link))})`);
  });
  $('#delete-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target.elements;
    const del = {
      source_id: f.source_id.value.trim(),
      name: f.name.value.trim() || 'default',
      wit_namespace: f.wit_namespace.value.trim(),
      wit_package: f.wit_package.value.trim(),
    };
    submitForm(e.target, $('#delete-form-result'), '/api/links/delete', del,
      `link deleted (or was absent): ${del.source_id} ${del.wit_namespace}:${del.wit_package} [${del.name}]`);
  });
}

// ------------------------------------------------------------------ start

function start() {
  wireForms();
  // Filters and view choices only re-render the links.
  let typing = 0;
  $('#filter-id').addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(() => invalidate('graph'), 120); });
  $('#filter-nspkg').addEventListener('change', () => invalidate('graph'));
  $('#filter-name').addEventListener('change', () => invalidate('graph'));
  $('#show-labels').addEventListener('change', () => invalidate('graph'));
  $('#view-graph').addEventListener('click', () => { S.view = 'graph'; invalidate('graph'); });
  $('#view-list').addEventListener('click', () => { S.view = 'list'; invalidate('graph'); });
  window.addEventListener('hashchange', onHash);
  // Column widths follow the pane's width.
  let resizing = 0;
  window.addEventListener('resize', () => { clearTimeout(resizing); resizing = setTimeout(() => invalidate('graph'), 150); });
  invalidate('all');
  loadSnapshot();   // render as soon as possible, even before the stream opens
  openStream();     // each (re)open fetches the snapshot again
  onHash();         // #/component/{id} on load
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
