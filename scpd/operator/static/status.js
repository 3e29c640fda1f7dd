// The scpd status page: read the JSON endpoints once, then follow GET /events.
// Plain browser JavaScript, no build step and no dependency.
"use strict";

const MAX_SLOTS = 12;
const SVG_NS = "http://www.w3.org/2000/svg";
const page = {
  members: new Map(), // node key -> {name, state}
  quorumSet: null, // the local quorum set, as /quorum's quorum_set
  topTier: [], // [{node, quorum_set}], from /quorum's transitive analysis
  slots: new Map(), // slot -> ledger event data
  quorumTimer: 0,
};

const $ = (id) => document.getElementById(id);
const short = (key) => (key ? key.slice(0, 5) + "…" + key.slice(-4) : "");
const label = (key) => (page.members.get(key) || {}).name || short(key);
const stateOf = (key) => (page.members.get(key) || {}).state || "unknown";

async function getJSON(path) {
  const answer = await fetch(path, { cache: "no-store" });
  return answer.json();
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

// ----- node, ledger tip and sync state

function showSync(state) {
  const badge = $("sync-state");
  badge.textContent = state;
  badge.className = "badge " + state;
}

function showTip(slot, hash, closeTime) {
  $("tip-slot").textContent = slot;
  $("tip-hash").textContent = hash;
  $("tip-time").textContent = closeTime ? new Date(closeTime * 1000).toLocaleString() : "–";
}

function showInfo(info) {
  $("node-name").textContent = info.name || "scpd";
  $("node-key").textContent = info.node;
  $("network").textContent = info.network;
  document.title = (info.name || short(info.node)) + " · scpd";
  showSync(info.state);
  showTip(info.ledger.slot, info.ledger.hash, info.ledger.close_time);
}

// ----- slots

function addSlot(ledger) {
  page.slots.set(ledger.slot, ledger);
  for (const slot of [...page.slots.keys()].sort((a, b) => a - b).slice(0, -MAX_SLOTS)) page.slots.delete(slot);
  const body = $("slots").tBodies[0];
  body.replaceChildren();
  for (const slot of [...page.slots.keys()].sort((a, b) => b - a)) {
    const l = page.slots.get(slot);
    const row = body.insertRow();
    row.dataset.slot = slot;
    if (l === ledger) row.className = "fresh";
    cell(row, slot);
    cell(row, new Date(l.close_time * 1000).toLocaleTimeString([], { hour12: false }));
    cell(row, l.seconds === null ? "–" : l.seconds.toFixed(2) + " s");
    cell(row, l.txs).title = l.tx_ids.join("\n");
    cell(row, l.hash.slice(0, 16), "key");
  }
}

// ----- quorum members

function collectMembers(qset) {
  for (const v of qset.validators) page.members.set(v.node, { name: v.name, state: v.state });
  qset.inner_sets.forEach(collectMembers);
}

function showMembers() {
  const body = $("members").tBodies[0];
  body.replaceChildren();
  for (const [key, m] of page.members) {
    const row = body.insertRow();
    row.dataset.node = key;
    row.dataset.name = m.name || "";
    cell(row, m.name || short(key));
    cell(row, m.state, "state " + m.state);
    cell(row, short(key), "key").title = key;
  }
  drawQuorumSet();
  drawTopTier();
}

function showQuorum(quorum) {
  page.members.clear();
  collectMembers(quorum.quorum_set);
  page.quorumSet = quorum.quorum_set;
  page.topTier = quorum.transitive.top_tier || [];
  const s = quorum.summary;
  $("quorum-summary").textContent =
    `${s.threshold} of ${s.validators} · agree ${s.agree}, delayed ${s.delayed}, missing ${s.missing}, ` +
    `disagree ${s.disagree}` +
    (s.equivocating ? `, equivocating ${s.equivocating}` : "") +
    " · " +
    (s.fail_at === null ? "no failure can block this node" : `${s.fail_at} more failure(s) block this node`) +
    (s.fail_with && s.fail_with.length ? ` (${s.fail_with.join(", ")})` : "");
  showMembers();
}

// ----- peers

function showPeers(peers) {
  const body = $("peers").tBodies[0];
  body.replaceChildren();
  const all = [...peers.authenticated.outbound, ...peers.authenticated.inbound];
  for (const p of all) {
    const row = body.insertRow();
    row.dataset.node = p.node;
    cell(row, p.name || short(p.node));
    cell(row, p.direction);
    cell(row, p.address || "–", "key");
    cell(row, `${p.messages_received} / ${p.messages_sent}`);
  }
  const pending = peers.pending.inbound + peers.pending.outbound.length;
  $("peers-summary").textContent = `${peers.connected} connected, ${pending} handshake(s) pending`;
}

// ----- pictures (inline SVG)

function svgEl(parent, name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  parent.appendChild(el);
  return el;
}

function nodeDot(svg, key, x, y, r) {
  const g = svgEl(svg, "g", { "data-node": key });
  svgEl(g, "circle", { cx: x, cy: y, r: r, class: "node " + stateOf(key) });
  svgEl(g, "title", {}, `${label(key)} (${stateOf(key)})\n${key}`);
  svgEl(g, "text", { x: x, y: y + r + 13 }, label(key));
}

function leaves(qset) {
  return qset.validators.length + qset.inner_sets.reduce((n, q) => n + leaves(q), 0) || 1;
}

// The local quorum set as a tree: each set is a box "k of n" above its entries.
function drawQuorumSet() {
  const svg = $("qset-svg");
  svg.replaceChildren();
  if (!page.quorumSet) return;
  const width = 480;
  const levelHeight = 90;
  let depth = 1;
  const measure = (q, d) => { depth = Math.max(depth, d); q.inner_sets.forEach((i) => measure(i, d + 1)); };
  measure(page.quorumSet, 1);
  svg.setAttribute("viewBox", `0 0 ${width} ${Math.max(depth * levelHeight + 60, 240)}`);
  const place = (q, left, right, y) => {
    const x = (left + right) / 2;
    const step = (right - left) / leaves(q);
    let cursor = left;
    const entries = [...q.validators.map((v) => ({ v, n: 1 })), ...q.inner_sets.map((i) => ({ i, n: leaves(i) }))];
    for (const e of entries) {
      const cx = cursor + (e.n * step) / 2;
      svgEl(svg, "line", { x1: x, y1: y + 10, x2: cx, y2: y + levelHeight - 14, class: "edge" });
      if (e.v) nodeDot(svg, e.v.node, cx, y + levelHeight, 16);
      else place(e.i, cursor, cursor + e.n * step, y + levelHeight);
      cursor += e.n * step;
    }
    svgEl(svg, "rect", { x: x - 30, y: y - 10, width: 60, height: 20, rx: 4, class: "set" });
    svgEl(svg, "text", { x: x, y: y + 4 }, `${q.threshold} of ${q.validators.length + q.inner_sets.length}`);
  };
  place(page.quorumSet, 0, width, 40);
}

function qsetMembers(q) {
  return [...q.validators, ...q.inner_sets.flatMap(qsetMembers)];
}

// The top tier on a ring; a line from each node to every validator its quorum set names.
function drawTopTier() {
  const svg = $("tier-svg");
  svg.replaceChildren();
  const tier = page.topTier;
  $("tier-caption").textContent = `Top tier of the transitive quorum (${tier.length} nodes)`;
  if (!tier.length) return;
  const size = 360;
  const radius = tier.length === 1 ? 0 : 120;
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  const at = new Map();
  tier.forEach((t, i) => {
    const angle = (2 * Math.PI * i) / tier.length - Math.PI / 2;
    at.set(t.node, [size / 2 + radius * Math.cos(angle), size / 2 + radius * Math.sin(angle)]);
  });
  for (const t of tier) {
    const [x1, y1] = at.get(t.node);
    for (const other of qsetMembers(t.quorum_set)) {
      if (other === t.node || !at.has(other)) continue;
      const [x2, y2] = at.get(other);
      svgEl(svg, "line", { x1, y1, x2, y2, class: "edge" });
    }
  }
  for (const t of tier) {
    const [x, y] = at.get(t.node);
    nodeDot(svg, t.node, x, y, 16);
  }
}

// ----- live updates

async function refresh() {
  const [info, quorum, peers] = await Promise.all([getJSON("/info"), getJSON("/quorum"), getJSON("/peers")]);
  showInfo(info);
  showQuorum(quorum);
  showPeers(peers);
}

function follow() {
  const stream = new EventSource("/events");
  const streamState = $("stream-state");
  stream.onopen = () => { streamState.textContent = "live"; };
  stream.onerror = () => { streamState.textContent = "reconnecting…"; };
  stream.addEventListener("ledger", (e) => {
    const ledger = JSON.parse(e.data);
    addSlot(ledger);
    if (ledger.slot >= Number($("tip-slot").textContent || 0)) showTip(ledger.slot, ledger.hash, ledger.close_time);
  });
  stream.addEventListener("member", (e) => {
    const m = JSON.parse(e.data);
    page.members.set(m.node, { name: m.name, state: m.state });
    showMembers();
    // The summary (counts, fail_at) follows from the server's view: re-read it once the burst is over.
    clearTimeout(page.quorumTimer);
    page.quorumTimer = setTimeout(() => getJSON("/quorum").then(showQuorum).catch(() => {}), 300);
  });
  stream.addEventListener("sync", (e) => showSync(JSON.parse(e.data).state));
  // This reader fell behind and lost events: read the whole state again.
  stream.addEventListener("dropped", () => refresh());
}

refresh().then(follow, follow);
// Peers and the analysis change without events; a light poll keeps them current.
setInterval(() => getJSON("/peers").then(showPeers).catch(() => {}), 5000);
setInterval(() => getJSON("/quorum").then(showQuorum).catch(() => {}), 15000);
