// tradesync dashboard page: the live socket (/ws/live-dashboard) with resume and backoff, HTTP polling when the
// socket is down, the panels, the hand-drawn chart and the manual order flow. Plain ES module, no build step.
// Numbers arrive as JSON strings (exact decimal text) and are shown as they came; only the chart parses them.

const FINAL_STATES = new Set(["filled", "canceled", "cancelled", "rejected", "expired"]);
const PUBLISHER_TYPES = new Set(["market_data", "trading_decision", "ai_decision", "system_status", "position_update"]);

export const RECONNECT = Object.freeze({
  firstDelayMs: 250,   // doubles each try ...
  maxDelayMs: 10_000,  // ... up to this
  maxTries: 8,         // then the failed banner and HTTP polling
  pollEveryMs: 2_000,  // HTTP polling while the socket is down
  retryEveryMs: 30_000, // one socket try this often while polling
  pingEveryMs: 15_000,
  silentLimitMs: 40_000, // nothing heard for this long (not even a pong): the socket is dead, reconnect
});
const KEEP = Object.freeze({ fills: 200, alerts: 50, chart: 500, events: 200, finalOrders: 500 });

const params = new URLSearchParams(location.search);
const TOKEN = params.get("token") || "";
const TOKEN_REFUSED = "the token was refused (HTTP 401): open the URL the dashboard printed";

/** Delay before try `n` (1-based): 250 ms doubling to 10 s, with "equal jitter" (half fixed, half random). */
export function backoffDelay(n, random = Math.random) {
  const base = Math.min(RECONNECT.maxDelayMs, RECONNECT.firstDelayMs * 2 ** Math.max(0, n - 1));
  return Math.round(base / 2 + random() * base / 2);
}

// ---------------------------------------------------------------------------------------------------------------
// state: what the page shows, rebuilt from a snapshot and kept by messages

function emptyState() {
  return {
    balances: new Map(),     // key|asset -> balance
    positions: new Map(),    // key|symbol|position_side -> position
    orders: new Map(),       // key|client_order_id -> order (open and recently final)
    fills: [],               // oldest first, newest KEEP.fills
    fillIds: new Set(),
    connections: new Map(),  // key -> connection
    health: null,
    alerts: [],              // oldest first
    chart: [],               // pnl points, oldest first
    events: [],              // publisher events, oldest first
  };
}

const state = emptyState();
const dirty = new Set();
const manual = { confirmationId: null, expiresAt: 0, countdown: null, placed: null, busy: false }; // the order form

const balanceId = (b) => `${b.key}|${b.asset}`;
const positionId = (p) => `${p.key}|${p.symbol}|${p.position_side ?? "net"}`;
const orderId = (o) => `${o.source ? o.source + ":" : ""}${o.key}|${o.client_order_id ?? o.order_id}`;
const fillId = (f) => `${f.source ? f.source + ":" : ""}${f.key}|${f.trade_id}`;

function replaceFromSnapshot(data) {
  const events = state.events; // publisher events are not in a snapshot: keep the ones seen
  Object.assign(state, emptyState(), { events });
  for (const b of data.balances ?? []) state.balances.set(balanceId(b), b);
  for (const p of data.positions ?? []) state.positions.set(positionId(p), p);
  for (const o of data.orders ?? []) state.orders.set(orderId(o), o);
  for (const f of data.fills ?? []) addFill(f);
  const connections = data.connections ?? {};
  for (const [key, c] of Object.entries(connections)) state.connections.set(key, { key, ...c });
  state.health = data.health ?? null;
  state.alerts = (data.alerts ?? []).slice(-KEEP.alerts);
  state.chart = (data.chart ?? []).slice(-KEEP.chart);
  markAllDirty();
}

function addFill(fill) {
  const id = fillId(fill);
  if (state.fillIds.has(id)) return false;
  fill._receivedAt = Date.now();
  state.fills.push(fill);
  state.fillIds.add(id);
  while (state.fills.length > KEEP.fills) state.fillIds.delete(fillId(state.fills.shift()));
  return true;
}

function putOrder(order) {
  state.orders.set(orderId(order), order);
  // the manual order's newest state is kept apart: it survives a snapshot (which holds open orders only)
  if (manual.placed && orderId(manual.placed.order) === orderId(order)) manual.placed.order = order;
  const final = [...state.orders.entries()].filter(([, o]) => FINAL_STATES.has(String(o.state).toLowerCase()));
  for (const [id] of final.slice(0, Math.max(0, final.length - KEEP.finalOrders))) state.orders.delete(id);
}

function pushBounded(list, item, keep) {
  list.push(item);
  if (list.length > keep) list.splice(0, list.length - keep);
}

function putChartPoint(point) {
  const last = state.chart[state.chart.length - 1];
  if (last && last.timestamp === point.timestamp) state.chart[state.chart.length - 1] = point;
  else pushBounded(state.chart, point, KEEP.chart);
}

/** Apply one stream message (not a snapshot). */
function applyMessage(msg) {
  const data = msg.data ?? {};
  switch (msg.type) {
    case "balance": state.balances.set(balanceId(data), data); dirty.add("balances"); dirty.add("manualHints"); break;
    case "positions":
      state.positions.set(positionId(data), data); dirty.add("positions"); dirty.add("manualHints");
      break;
    case "orders":
      putOrder(data); dirty.add("orders"); dirty.add("manualResult");
      if (data.source) addEvent(msg);
      break;
    case "fill":
      if (addFill(data)) { dirty.add("fills"); dirty.add("chart"); dirty.add("manualResult"); }
      if (data.source) addEvent(msg);
      break;
    case "connection": state.connections.set(data.key, data); dirty.add("connections"); dirty.add("manualHints"); break;
    case "health": state.health = data; dirty.add("health"); break;
    case "alert": pushBounded(state.alerts, data, KEEP.alerts); dirty.add("alerts"); break;
    case "pnl": putChartPoint(data); dirty.add("chart"); break;
    default: addEvent(msg); // publisher types (market_data, trading_decision, ...) and any newer type
  }
}

function addEvent(msg) {
  pushBounded(state.events, { type: msg.type, seq: msg.seq, timestamp: msg.timestamp, data: msg.data ?? {} },
    KEEP.events);
  dirty.add("events");
}

function markAllDirty() {
  for (const part of ["balances", "positions", "orders", "fills", "connections", "health", "alerts", "chart",
    "events", "manualHints", "manualResult"]) dirty.add(part);
}

// ---------------------------------------------------------------------------------------------------------------
// the stream: one socket, resumed with since=<last seq applied>; backoff, then polling

const stream = {
  mode: "connecting",  // connecting | live | failed
  transport: "WS",     // WS | HTTP
  attempt: 0,
  lastSeq: null,       // the last journal seq applied (null: nothing yet, connect for a snapshot)
  reason: "",
  snapshots: 0,
  lastSnapshotReason: null,
  history: [],         // banner states as shown: {state, text, at}
  socket: null,
  timer: null,
  pollTimer: null,
  pingTimer: null,
  heardAt: 0,
};

function setBanner(mode, text) {
  stream.mode = mode;
  const banner = document.getElementById("banner");
  banner.dataset.state = mode;
  document.getElementById("stream-state").textContent = text;
  const badge = document.getElementById("transport");
  badge.textContent = stream.transport;
  badge.dataset.transport = stream.transport;
  document.getElementById("retry-note").hidden = mode !== "failed" || stream.pollTimer === null;
  const last = stream.history[stream.history.length - 1];
  if (!last || last.text !== text || last.transport !== stream.transport) {
    stream.history.push({ state: mode, text, transport: stream.transport, at: Date.now() });
    if (stream.history.length > 200) stream.history.shift();
  }
}

function socketUrl() {
  const url = new URL("/ws/live-dashboard", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  url.searchParams.set("token", TOKEN);
  if (stream.lastSeq !== null) url.searchParams.set("since", String(stream.lastSeq));
  return url.toString();
}

function tryConnect() {
  clearTimeout(stream.timer);
  stream.attempt += 1;
  if (stream.mode !== "failed") setBanner("connecting", `connecting (attempt ${stream.attempt})`);
  let socket;
  try {
    socket = new WebSocket(socketUrl());
  } catch (err) {
    onSocketFailed(null, `cannot open the socket: ${err.message}`);
    return;
  }
  stream.socket = socket;
  let heard = false; // live from the first message (a socket that opens and says nothing is not)
  socket.addEventListener("open", () => {
    stream.heardAt = Date.now();
    startPing(socket);
    socket.send(JSON.stringify({ type: "ping" })); // answered at once; its seq tells the journal's latest
  });
  socket.addEventListener("message", (event) => {
    stream.heardAt = Date.now();
    if (!heard) {
      heard = true;
      stream.attempt = 0;
      stream.transport = "WS";
      stopPolling();
      clearTimeout(stream.timer); // the 30 s retry of the failed state
      setBanner("live", "live");
    }
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return; // not JSON: nothing the protocol sends
    }
    onStreamMessage(msg);
  });
  socket.addEventListener("close", (event) => {
    if (stream.socket !== socket) return; // replaced already
    stream.socket = null;
    stopPing();
    if (heard) {
      stream.attempt = 0;
      scheduleReconnect(`the socket closed (code ${event.code}${event.reason ? ": " + event.reason : ""})`);
    } else {
      onSocketFailed(event, `the socket closed before the dashboard said anything (code ${event.code}` +
        `${event.reason ? ": " + event.reason : ""})`);
    }
  });
}

function onStreamMessage(msg) {
  if (!msg || typeof msg.type !== "string") return;
  if (msg.type === "pong") {
    // a journal behind what the page applied is a new dashboard process: drop `since` and ask for a snapshot
    if (typeof msg.seq === "number" && stream.lastSeq !== null && msg.seq < stream.lastSeq) {
      stream.lastSeq = null;
      stream.socket?.close(4001, "journal restarted");
    }
    return;
  }
  if (msg.type === "snapshot") {
    replaceFromSnapshot(msg.data ?? {});
    stream.snapshots += 1;
    stream.lastSnapshotReason = msg.data?.reason ?? null;
    if (typeof msg.seq === "number") stream.lastSeq = msg.seq;
  } else {
    if (typeof msg.seq === "number") {
      if (stream.lastSeq !== null && msg.seq <= stream.lastSeq) return; // seen already (a resend)
      stream.lastSeq = msg.seq;
    }
    applyMessage(msg);
  }
  dirty.add("seq");
  scheduleRender();
}

function scheduleReconnect(reason) {
  stream.reason = reason;
  if (stream.attempt >= RECONNECT.maxTries) {
    goFailed(reason);
    return;
  }
  const next = stream.attempt + 1;
  setBanner("connecting", `connecting (attempt ${next})`);
  stream.timer = setTimeout(tryConnect, backoffDelay(next));
}

async function onSocketFailed(_event, fallback) {
  const reason = await diagnose(fallback);
  if (stream.mode === "failed") { // a 30 s retry that did not take: keep polling
    stream.reason = reason;
    setBanner("failed", failedText());
    stream.timer = setTimeout(tryConnect, RECONNECT.retryEveryMs);
    return;
  }
  const refused = reason === TOKEN_REFUSED; // trying again cannot help, and polling would be refused too
  if (refused || stream.attempt >= RECONNECT.maxTries) goFailed(reason, { poll: !refused });
  else scheduleReconnect(fallback);
}

/** Why the socket cannot be had, in words: the token refused, the server gone, or the socket's close code. */
async function diagnose(fallback) {
  if (!TOKEN) return "no token in the page's address: open the URL the dashboard printed (…/?token=…)";
  try {
    const response = await fetch("/api/status", { headers: authHeaders(), cache: "no-store" });
    if (response.status === 401) return TOKEN_REFUSED;
    return fallback;
  } catch {
    return "the dashboard server does not answer";
  }
}

function failedText() {
  const tries = stream.failedTries;
  return `failed after ${tries} ${tries === 1 ? "try" : "tries"}: ${stream.reason}`;
}

function goFailed(reason, { poll = true } = {}) {
  stream.reason = reason;
  stream.failedTries = stream.attempt;
  stream.transport = "HTTP";
  if (poll) startPolling();
  setBanner("failed", failedText());
  stream.timer = setTimeout(tryConnect, RECONNECT.retryEveryMs);
}

function startPing(socket) {
  stopPing();
  stream.pingTimer = setInterval(() => {
    if (Date.now() - stream.heardAt > RECONNECT.silentLimitMs) {
      socket.close(4000, "silent");
      return;
    }
    if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "ping" }));
  }, RECONNECT.pingEveryMs);
}

function stopPing() {
  clearInterval(stream.pingTimer);
  stream.pingTimer = null;
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP: polling while the socket is down, and the manual order endpoints

function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${TOKEN}`, ...extra };
}

async function getJson(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

async function postJson(path, body) {
  const response = await fetch(path, {
    method: "POST", headers: authHeaders({ "Content-Type": "application/json" }), body: JSON.stringify(body),
  });
  let answer = {};
  try {
    answer = await response.json();
  } catch {
    answer = {};
  }
  if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
  return answer;
}

const listOf = (answer, name) => (Array.isArray(answer) ? answer : answer?.[name] ?? answer?.items ?? []);

function startPolling() {
  if (stream.pollTimer !== null) return;
  const tick = async () => {
    try {
      await pollOnce();
    } catch (err) {
      stream.pollError = err.message;
    }
    if (stream.pollTimer !== null) stream.pollTimer = setTimeout(tick, RECONNECT.pollEveryMs);
  };
  stream.pollTimer = setTimeout(tick, 0);
}

function stopPolling() {
  clearTimeout(stream.pollTimer);
  stream.pollTimer = null;
}

async function pollOnce() {
  const since = state.fills.reduce((most, f) => Math.max(most, Number(f.store_seq ?? 0)), 0);
  const [balances, positions, orders, status] = await Promise.all([
    getJson("/api/balances"), getJson("/api/positions"), getJson("/api/orders"), getJson("/api/status"),
  ]);
  let after = since;
  for (let page = 0; page < 20; page += 1) { // ≤ 1000 a page: read on to the newest
    const fills = listOf(await getJson(`/api/fills?since=${after}`), "fills");
    for (const f of fills) {
      if (!f.key) continue;
      addFill(f);
      after = Math.max(after, Number(f.store_seq ?? after));
    }
    if (fills.length < 1000) break;
  }
  if (stream.transport !== "HTTP") return; // the socket came back meanwhile: it is the source now
  state.balances = new Map(listOf(balances, "balances").map((b) => [balanceId(b), b]));
  state.positions = new Map(listOf(positions, "positions").map((p) => [positionId(p), p]));
  const open = new Map(listOf(orders, "orders").map((o) => [orderId(o), o]));
  for (const [id, o] of state.orders) if (FINAL_STATES.has(String(o.state).toLowerCase())) open.set(id, o);
  state.orders = open;
  const connections = status.connections ?? {};
  state.connections = new Map(Array.isArray(connections)
    ? connections.map((c) => [c.key, c]) : Object.entries(connections).map(([key, c]) => [key, { key, ...c }]));
  if (status.health) state.health = status.health;
  if (Array.isArray(status.alerts)) state.alerts = status.alerts.slice(-KEEP.alerts);
  stream.polledAt = Date.now();
  markAllDirty();
  scheduleRender();
}

// ---------------------------------------------------------------------------------------------------------------
// rendering: dirty parts only, at most every RENDER_EVERY_MS

const RENDER_EVERY_MS = 50;
let renderTimer = null;
let renderedAt = 0;

function scheduleRender() {
  if (renderTimer !== null) return;
  const wait = Math.max(0, RENDER_EVERY_MS - (Date.now() - renderedAt));
  renderTimer = setTimeout(() => {
    renderTimer = null;
    renderedAt = Date.now();
    render();
  }, wait);
}

const RENDERERS = {
  balances: renderBalances, positions: renderPositions, orders: renderOrders, fills: renderFills,
  connections: renderConnections, health: renderHealth, alerts: renderAlerts, chart: () => drawChart(),
  events: renderEvents, manualHints: renderManualHints, manualResult: renderManualResult,
  seq: () => { document.getElementById("last-seq").textContent = `seq ${stream.lastSeq ?? "–"}`; },
};

function render() {
  const parts = [...dirty];
  dirty.clear();
  for (const part of parts) RENDERERS[part]?.();
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (name === "class") node.className = value;
    else if (name.startsWith("data-")) node.setAttribute(name, String(value));
    else node[name] = value;
  }
  for (const child of children) node.append(child instanceof Node ? child : text(child));
  return node;
}

const text = (value) => (value === undefined || value === null || value === "" ? "–" : String(value));

/** Decimal text without trailing zeros ("0.01000000" -> "0.01"): the same number, exactly; anything else as is. */
export function plain(value) {
  if (typeof value !== "string" || !/^-?\d+\.\d+$/.test(value)) return value;
  const trimmed = value.replace(/0+$/, "").replace(/\.$/, "");
  return trimmed === "-0" ? "0" : trimmed;
}

const num = (value) => el("td", { class: "num", title: value ?? "" }, plain(value));
const td = (value) => el("td", {}, value);

function fillBody(id, rows) {
  const body = document.querySelector(`#${id} tbody`);
  body.replaceChildren(...rows);
  if (!rows.length) body.append(el("tr", { class: "empty" }, el("td", { colSpan: 20 }, "none")));
}

function signClass(value) {
  const n = Number(value);
  return n > 0 ? "pos" : n < 0 ? "neg" : "";
}

function renderBalances() {
  const rows = [...state.balances.values()].sort((a, b) => balanceId(a).localeCompare(balanceId(b)))
    .map((b) => el("tr", { "data-testid": "balance-row", "data-key": b.key, "data-asset": b.asset },
      td(b.key), td(b.asset), num(b.free), num(b.locked), num(b.total)));
  fillBody("balances", rows);
}

function renderPositions() {
  const rows = [...state.positions.values()].sort((a, b) => positionId(a).localeCompare(positionId(b)))
    .map((p) => el("tr", { "data-testid": "position-row", "data-key": p.key, "data-symbol": p.symbol },
      td(p.key), td(p.symbol), td(p.direction ?? p.position_side), num(p.size), num(p.entry_price), num(p.mark_price),
      el("td", { class: `num ${signClass(p.unrealized_pnl)}`, "data-testid": "unrealized-pnl" },
        plain(p.unrealized_pnl)),
      el("td", { class: `num ${signClass(p.realized_pnl)}` }, plain(p.realized_pnl)), num(p.leverage)));
  fillBody("positions", rows);
}

function isOpen(order) {
  return !FINAL_STATES.has(String(order.state).toLowerCase());
}

function renderOrders() {
  const open = [...state.orders.values()].filter(isOpen)
    .sort((a, b) => Number(b.updated ?? 0) - Number(a.updated ?? 0));
  document.getElementById("orders-count").textContent = `(${open.length})`;
  fillBody("orders", open.map((o) => el("tr", {
    "data-testid": "order-row", "data-key": o.key, "data-client-order-id": o.client_order_id,
    "data-order-id": o.order_id, "data-state": o.state,
  }, td(o.key), td(o.strategy_id ?? o.source), td(o.client_order_id), td(o.symbol), el("td", { class: o.side }, o.side),
  td(o.order_type), num(o.amount), num(o.price), num(o.filled), td(o.state), td(o.path), num(o.ack_latency_ms))));
}

function renderFills() {
  document.getElementById("fills-count").textContent = `(${state.fills.length})`;
  const now = Date.now();
  const rows = [];
  for (let i = state.fills.length - 1; i >= 0; i -= 1) {
    const f = state.fills[i];
    f._shownAt ??= now;
    rows.push(el("tr", {
      "data-testid": "fill-row", "data-key": f.key, "data-trade-id": f.trade_id, "data-order-id": f.order_id,
      "data-client-order-id": f.client_order_id, "data-received-at": f._receivedAt, "data-shown-at": f._shownAt,
    }, td(timeOf(f.timestamp)), td(f.key), td(f.symbol), el("td", { class: f.side }, f.side), num(f.amount),
    num(f.price),
    el("td", { class: "num" }, f.fee_cost == null ? "–" : `${plain(f.fee_cost)} ${f.fee_currency ?? ""}`.trim()),
    td(f.trade_id), td(f.client_order_id), td(f.strategy_id ?? f.source)));
  }
  fillBody("fills", rows);
}

function timeOf(ms) {
  if (ms === undefined || ms === null) return "–";
  const d = new Date(Number(ms));
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

function ago(ms) {
  if (!ms) return "–";
  const seconds = Math.max(0, (Date.now() - Number(ms)) / 1000);
  return seconds < 60 ? `${seconds.toFixed(1)} s ago` : `${Math.round(seconds / 60)} min ago`;
}

function renderConnections() {
  const rows = [...state.connections.values()].sort((a, b) => String(a.key).localeCompare(String(b.key)))
    .map((c) => el("tr", { "data-testid": "connection-row", "data-key": c.key, "data-status": c.status },
      td(c.key), el("td", { class: `status ${c.status}` }, c.status), num(c.reconnects), td(ago(c.last_message)),
      td(c.error)));
  fillBody("connections", rows);
}

function renderHealth() {
  const box = document.getElementById("health");
  const h = state.health;
  if (!h) {
    box.replaceChildren(el("span", { class: "muted" }, "no report yet"));
    return;
  }
  const lanes = Object.entries(h.lanes ?? {}).map(([name, lane]) => el("li", {}, `${name}: ${describe(lane)}`));
  box.replaceChildren(
    el("p", {},
      el("span", {
        class: `badge ${h.healthy ? "ok" : "bad"}`, "data-testid": "healthy", "data-healthy": String(!!h.healthy),
      },
        h.healthy ? "healthy" : "unhealthy"),
      ` alerts ${text(h.alerts)} · fills stored ${text(h.fills_stored)} · dead letters ${text(h.dead_letters)}`),
    el("ul", { class: "lanes" }, ...lanes));
}

function describe(value) {
  if (value === null || typeof value !== "object") return text(value);
  return Object.entries(value).map(([k, v]) => `${k} ${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`)
    .join(", ");
}

function renderAlerts() {
  const items = state.alerts.slice().reverse().map((a) => el("li",
    { class: `sev-${a.severity}`, "data-testid": "alert" },
    el("span", { class: "muted" }, timeOf(a.timestamp)), ` ${text(a.severity)} ${text(a.name)} (${text(a.scope)}): `,
    text(a.message)));
  if (!items.length) items.push(el("li", { class: "muted" }, "none"));
  document.getElementById("alerts").replaceChildren(...items);
}

function renderEvents() {
  const items = state.events.slice().reverse().map((e) => {
    const d = e.data ?? {};
    const detail = e.type === "trading_decision" || e.type === "ai_decision"
      ? [d.action ?? d.decision ?? d.side, d.symbol, d.confidence !== undefined ? `confidence ${d.confidence}` : null,
        d.reasoning ?? d.reason].filter((x) => x !== undefined && x !== null && x !== "").join(" · ")
      : Object.entries(d).filter(([k]) => k !== "source").slice(0, 8)
        .map(([k, v]) => `${k}=${typeof v === "object" && v !== null ? JSON.stringify(v) : v}`).join(" ");
    return el("li", { "data-testid": "event", "data-type": e.type, "data-source": d.source },
      el("span", { class: "muted" }, timeOf(e.timestamp)), " ", el("b", {}, e.type),
      d.source ? el("span", { class: "muted" }, ` from ${d.source}`) : "", `: ${detail || "–"}`);
  });
  if (!items.length) {
    items.push(el("li", { class: "muted" },
      "none yet: a bot publishes here with SYSTEM__ENABLE_WEBSOCKET_PUBLISHING=true"));
  }
  document.getElementById("events").replaceChildren(...items);
}

// ---------------------------------------------------------------------------------------------------------------
// the chart: PnL lines (realized, unrealized, total) on the left axis, fills (count) on the right, fill ticks

const COLORS = { realized: "#4f8cff", unrealized: "#f0a030", total: "#38c172", fills: "#9aa4b2", buy: "#38c172",
  sell: "#e3505b", grid: "#2a3140", text: "#9aa4b2" };

function drawChart() {
  const canvas = document.getElementById("chart");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || 900;
  const height = canvas.clientHeight || 220;
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  }
  const g = canvas.getContext("2d");
  g.setTransform(ratio, 0, 0, ratio, 0, 0);
  g.clearRect(0, 0, width, height);
  g.font = "11px system-ui, sans-serif";

  const points = state.chart.map((p) => ({
    t: Number(p.timestamp), realized: Number(p.realized) || 0, unrealized: Number(p.unrealized) || 0,
    fills: Number(p.fills) || 0,
  })).filter((p) => Number.isFinite(p.t)).sort((a, b) => a.t - b.t);
  const fills = state.fills.map((f) => ({ t: Number(f.timestamp), side: f.side })).filter((f) => Number.isFinite(f.t));
  const pad = { left: 64, right: 48, top: 10, bottom: 34 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const times = points.map((p) => p.t).concat(fills.map((f) => f.t));
  if (!times.length) {
    g.fillStyle = COLORS.text;
    g.fillText("waiting for fills and PnL …", pad.left, pad.top + plotH / 2);
    return;
  }
  let t1 = Math.max(...times);
  let t0 = Math.min(...times);
  if (t1 - t0 < 10_000) { // at least 10 s across, the data in the middle
    const middle = (t0 + t1) / 2;
    t0 = middle - 5_000;
    t1 = middle + 5_000;
  }
  const edge = (t1 - t0) * 0.02;
  t0 -= edge;
  t1 += edge;
  const x = (t) => pad.left + ((t - t0) / (t1 - t0)) * plotW;

  const values = points.flatMap((p) => [p.realized, p.unrealized, p.realized + p.unrealized]).concat([0]);
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (hi - lo < 1e-9) { hi += 1; lo -= 1; }
  const margin = (hi - lo) * 0.08;
  lo -= margin; hi += margin;
  const y = (v) => pad.top + (1 - (v - lo) / (hi - lo)) * plotH;
  const fillMax = Math.max(1, ...points.map((p) => p.fills));
  const yFills = (v) => pad.top + (1 - v / fillMax) * plotH;

  // grid and axes
  g.strokeStyle = COLORS.grid;
  g.fillStyle = COLORS.text;
  g.lineWidth = 1;
  for (let i = 0; i <= 4; i += 1) {
    const v = lo + ((hi - lo) * i) / 4;
    const yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(pad.left, yy); g.lineTo(pad.left + plotW, yy); g.stroke();
    g.textAlign = "right"; g.fillText(formatAxis(v, hi - lo), pad.left - 6, yy + 4);
    if (i % 2 === 0) { // fills (right axis): 0, half, all
      const count = Math.round((fillMax * i) / 4);
      g.textAlign = "left"; g.fillText(String(count), pad.left + plotW + 6, Math.round(yFills(count)) + 4);
    }
  }
  g.textAlign = "center";
  for (let i = 0; i <= 4; i += 1) {
    const t = t0 + ((t1 - t0) * i) / 4;
    g.fillText(new Date(t).toLocaleTimeString([], { hour12: false }), x(t), height - pad.bottom + 26);
  }
  // zero line
  g.strokeStyle = "#45506a";
  const zero = Math.round(y(0)) + 0.5;
  g.beginPath(); g.moveTo(pad.left, zero); g.lineTo(pad.left + plotW, zero); g.stroke();

  // fills: cumulative count (right axis) as a step line, each fill a tick under the plot
  if (points.length) {
    g.strokeStyle = COLORS.fills;
    g.setLineDash([3, 3]);
    g.beginPath();
    points.forEach((p, i) => {
      if (i === 0) g.moveTo(x(p.t), yFills(p.fills));
      else { g.lineTo(x(p.t), yFills(points[i - 1].fills)); g.lineTo(x(p.t), yFills(p.fills)); }
    });
    g.stroke();
    g.setLineDash([]);
  }
  for (const f of fills) {
    if (f.t < t0) continue;
    const xx = Math.round(x(f.t)) + 0.5;
    const base = pad.top + plotH;
    g.strokeStyle = f.side === "sell" ? COLORS.sell : COLORS.buy;
    g.beginPath(); g.moveTo(xx, base + 2); g.lineTo(xx, base + 10); g.stroke();
  }

  for (const [name, value] of [["realized", (p) => p.realized], ["unrealized", (p) => p.unrealized],
    ["total", (p) => p.realized + p.unrealized]]) {
    if (!points.length) break;
    g.strokeStyle = COLORS[name];
    g.lineWidth = name === "total" ? 2 : 1.5;
    g.beginPath();
    points.forEach((p, i) => (i === 0 ? g.moveTo(x(p.t), y(value(p))) : g.lineTo(x(p.t), y(value(p)))));
    if (points.length === 1) g.lineTo(pad.left + plotW, y(value(points[0])));
    g.stroke();
  }
  g.lineWidth = 1;
}

function formatAxis(value, span) {
  const digits = span >= 100 ? 0 : span >= 1 ? 2 : span >= 0.01 ? 4 : 6;
  return value.toFixed(digits);
}

// ---------------------------------------------------------------------------------------------------------------
// manual orders: form -> Review (prepare) -> Confirm (place) -> the order, its path and latency


function field(id) {
  return document.getElementById(id);
}

function showManualError(message) {
  const box = field("manual-error");
  box.textContent = message || "";
  box.hidden = !message;
}

function manualRequest() {
  const form = field("manual-form");
  const body = {
    key: field("manual-key").value.trim(),
    symbol: field("manual-symbol").value.trim(),
    side: form.querySelector("input[name=side]:checked")?.value ?? "long",
    order_type: field("manual-type").value,
    amount: field("manual-amount").value.trim(),
  };
  const optional = { price: "manual-price", take_profit: "manual-tp", stop_loss: "manual-sl" };
  for (const [name, id] of Object.entries(optional)) {
    const value = field(id).value.trim();
    if (value && !(name === "price" && body.order_type === "market")) body[name] = value;
  }
  return body;
}

async function review(event) {
  event.preventDefault();
  if (manual.busy) return;
  showManualError("");
  manual.busy = true;
  field("manual-review").disabled = true;
  try {
    const answer = await postJson("/api/manual-trade/prepare", manualRequest());
    manual.confirmationId = answer.confirmation_id;
    manual.expiresAt = Date.now() + Number(answer.expires_in ?? 60) * 1000;
    renderSummary(answer.summary, manualRequest());
    field("manual-form").hidden = true;
    field("manual-result").hidden = true;
    field("manual-confirm").hidden = false;
    field("manual-confirm-button").disabled = false;
    tickCountdown();
  } catch (err) {
    showManualError(`review refused: ${err.message}`);
  } finally {
    manual.busy = false;
    field("manual-review").disabled = false;
  }
}

function renderSummary(summary, request) {
  const items = [];
  if (summary && typeof summary === "object") {
    for (const [k, v] of Object.entries(summary)) {
      items.push(el("dt", {}, k), el("dd", {}, typeof v === "object" ? JSON.stringify(v) : v));
    }
  } else {
    items.push(el("dt", {}, "order"), el("dd", { "data-testid": "manual-summary-text" }, summary ?? "–"));
    for (const [k, v] of Object.entries(request)) items.push(el("dt", {}, k.replace("_", " ")), el("dd", {}, v));
  }
  field("manual-summary").replaceChildren(...items);
}

function tickCountdown() {
  clearInterval(manual.countdown);
  const update = () => {
    const left = Math.max(0, Math.ceil((manual.expiresAt - Date.now()) / 1000));
    field("manual-expires").textContent = String(left);
    if (left === 0) {
      clearInterval(manual.countdown);
      field("manual-confirm-button").disabled = true;
      showManualError("the confirmation expired: review the order again");
    }
  };
  update();
  manual.countdown = setInterval(update, 500);
}

async function confirmOrder() {
  if (manual.busy || !manual.confirmationId) return;
  manual.busy = true;
  showManualError("");
  field("manual-confirm-button").disabled = true;
  try {
    const answer = await postJson("/api/manual-trade-ws", { confirmation_id: manual.confirmationId });
    const known = answer.order ? state.orders.get(orderId(answer.order)) : undefined; // a fill may beat the answer
    manual.placed = { order: known ?? answer.order ?? {}, path: answer.path, latency: answer.latency_ms };
    if (answer.order && !known) putOrder(answer.order);
    clearInterval(manual.countdown);
    manual.confirmationId = null;
    field("manual-confirm").hidden = true;
    field("manual-form").hidden = false;
    field("manual-result").hidden = false;
    dirty.add("manualResult");
    dirty.add("orders");
    scheduleRender();
  } catch (err) {
    showManualError(`order refused: ${err.message}`);
    field("manual-confirm-button").disabled = false;
  } finally {
    manual.busy = false;
  }
}

function backToForm() {
  clearInterval(manual.countdown);
  manual.confirmationId = null;
  field("manual-confirm").hidden = true;
  field("manual-form").hidden = false;
  showManualError("");
}

function renderManualResult() {
  if (!manual.placed) return;
  const live = manual.placed.order; // kept current by the stream's `orders` messages (putOrder)
  const placed = live;
  const fills = state.fills.filter((f) => f.key === placed.key && (
    (placed.client_order_id && f.client_order_id === placed.client_order_id) ||
    (live.order_id && f.order_id === live.order_id)));
  field("manual-result-client-id").textContent = text(live.client_order_id);
  field("manual-result-order-id").textContent = text(live.order_id);
  field("manual-result-state").textContent = text(live.state);
  field("manual-result").dataset.state = live.state ?? "";
  field("manual-result-filled").textContent = `${text(plain(live.filled))} of ${text(plain(live.amount))}` +
    (fills.length ? ` (${fills.length} fill${fills.length > 1 ? "s" : ""})` : "");
  field("manual-result-path").textContent = text(manual.placed.path);
  const latency = manual.placed.latency;
  field("manual-result-latency").textContent = latency === undefined || latency === null ? "–" : `${latency} ms`;
}

function renderManualHints() {
  const keys = new Set([...state.connections.keys(), ...[...state.balances.values()].map((b) => b.key)]);
  field("known-keys").replaceChildren(...[...keys].sort().map((k) => el("option", { value: k })));
  const symbols = new Set([...state.positions.values()].map((p) => p.symbol)
    .concat(state.fills.map((f) => f.symbol), [...state.orders.values()].map((o) => o.symbol)).filter(Boolean));
  field("known-symbols").replaceChildren(...[...symbols].sort().map((s) => el("option", { value: s })));
  if (!field("manual-key").value && keys.size) field("manual-key").value = [...keys].sort()[0];
  if (!field("manual-symbol").value && symbols.size) field("manual-symbol").value = [...symbols].sort()[0];
}

function setUpManualForm() {
  field("manual-form").addEventListener("submit", review);
  field("manual-confirm-button").addEventListener("click", confirmOrder);
  field("manual-cancel").addEventListener("click", backToForm);
  const type = field("manual-type");
  const syncPrice = () => {
    const limit = type.value === "limit";
    field("manual-price").disabled = !limit;
    field("manual-price").required = limit;
  };
  type.addEventListener("change", syncPrice);
  syncPrice();
}

// ---------------------------------------------------------------------------------------------------------------

function start() {
  setUpManualForm();
  markAllDirty();
  render();
  window.addEventListener("resize", () => { dirty.add("chart"); scheduleRender(); });
  setInterval(() => { // ages ("2.1 s ago") and the clock move without messages
    document.getElementById("clock").textContent = new Date().toLocaleTimeString([], { hour12: false });
    dirty.add("connections");
    scheduleRender();
  }, 1000);
  if (!TOKEN) {
    stream.failedTries = 0;
    stream.transport = "HTTP";
    stream.reason = "no token in the page's address: open the URL the dashboard printed (…/?token=…)";
    setBanner("failed", failedText());
    return;
  }
  tryConnect();
}

// read-only handles for people (and the browser test) looking from the console
window.tradesync = { state, stream, RECONNECT };
start();
