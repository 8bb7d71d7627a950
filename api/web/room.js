// The waiting room: finds out where the buyer stands (drop, then the place: GET .../queue
// answers not_open, drop_closed, sold_out, limit_reached or drop_not_found before any
// socket is opened), then keeps one WebSocket open. Terminal states never reconnect; a
// real disconnect reconnects with exponential backoff and jitter under a "reconnecting,
// your place is kept" banner. The purchase goes over that socket while it is open, else over
// HTTP. Screens are in room-view.js.
import { api, header, requireLogin, roomTicket, renew, powQuery, loginUrl, money, clock } from "/static/app.js";
import { render, etaText } from "/static/room-view.js";

header();
const id = location.pathname.split("/").pop();
const $ = (x) => document.getElementById(x);
const TERMINAL = new Set(["notfound", "ended", "soldout", "bought", "reserved", "expired", "left", "replaced"]);
const c = { drop: null, pos: null, posAt: 0, admit: null, order: null, frozenEta: "", progress: 0, firstAhead: null };
let state = "", ws = null, attempts = 0, timer = null, paused = false;

function announce(text) { if (text) $("announce").textContent = text; }
const setError = (t = "") => { $("error").textContent = t; };

/// Enters `next` (rendered and announced only when it changes; the waiting screens are
/// redrawn for new numbers, silently).
function go(next) {
  if (next === state && !["waiting", "paused"].includes(next)) return;
  const entered = next !== state;
  state = next;
  const say = render(next, c);
  if (entered) announce(say);
  wire();
  tick();
  if (TERMINAL.has(next)) { clearTimeout(timer); banner(false); if (ws) ws.close(1000); }
}

function wire() {
  const again = $("again");
  if (again) again.onclick = () => { c.admit = null; state = ""; go("loading"); start(); };
  const buy = $("buy-btn");
  if (buy) buy.onclick = purchase;
  if (state === "waiting" && "Notification" in window && Notification.permission === "default" && !$("notify")) {
    const b = document.createElement("button");
    Object.assign(b, { type: "button", id: "notify", className: "secondary", textContent: "Notify me when it is my turn" });
    b.onclick = async () => { await Notification.requestPermission(); b.remove(); };
    $("screen-body").append(b);
  }
}

function banner(on) {
  if (on === !$("banner").hidden) return;
  $("banner").hidden = !on;
  if (on) announce("Connection lost. Reconnecting; your place is kept.");
}

/// Countdowns, "updated N s ago" and the tab title: rewritten every second, never announced.
function tick() {
  const now = Date.now(), d = c.drop;
  if (!d) return;
  const set = (x, t) => { if ($(x)) $(x).textContent = t; };
  set("cd-open", clock((Date.parse(d.opens_at) - now) / 1000));
  set("cd-start", clock((Date.parse(d.starts_at) - now) / 1000));
  if (c.posAt) set("ago", `Updated ${Math.max(0, Math.round((now - c.posAt) / 1000))} s ago.`);
  if (c.order && c.order.pay_by) set("pay-by", `Pay by ${new Date(c.order.pay_by).toLocaleTimeString("en-GB")}: ${clock((Date.parse(c.order.pay_by) - now) / 1000)} left.`);
  if (state === "admitted") {
    const left = (c.admit.expires_at_ms - now) / 1000;
    set("countdown", clock(left));
    document.title = `Your turn! ${clock(left)} — ${d.product_name}`;
    if (left <= 0 && $("buy-btn")) $("buy-btn").disabled = true;
  } else document.title = `${d.product_name} — VitaQueue`;
}

function onPosition(m) {
  if (TERMINAL.has(state) || state === "admitted" || state === "waitlist") return;
  c.pos = m; c.posAt = Date.now();
  if (c.firstAhead === null || m.ahead > c.firstAhead) c.firstAhead = Math.max(m.ahead, 1);
  c.progress = 1 - m.ahead / c.firstAhead;
  if (m.status === "paused") paused = true;
  else if (m.status === "ok") paused = false;
  if (m.prequeue) return go("prequeue");
  if (paused) { c.frozenEta = c.frozenEta || etaText(m.eta_s, m.eta_hi_s); return go("paused"); }
  c.frozenEta = "";
  go("waiting");
}

function onAdmitted(m) {
  c.admit = { token: m.token, expires_at_ms: m.expires_at_ms };
  go("admitted");
  const buy = $("buy-btn");
  if (buy) buy.focus();
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    new Notification("It's your turn on VitaQueue", { body: `Buy ${c.drop.product_name} before your window closes.` });
  }
}

const handlers = {
  position: onPosition,
  admitted: onAdmitted,
  expired: () => go("expired"),
  paused: () => { paused = true; c.frozenEta = c.pos ? etaText(c.pos.eta_s, c.pos.eta_hi_s) : ""; if (state !== "admitted") go("paused"); },
  resumed: () => { paused = false; c.frozenEta = ""; if (state === "paused") go(c.pos && c.pos.prequeue ? "prequeue" : "waiting"); },
  sold_out: (m) => { if (m.final) go("soldout"); else if (state !== "admitted") go("waitlist"); },
  phase: (m) => { if (m.phase === "live" && state === "waitlist") go(c.admit ? "admitted" : "waiting"); },
  left: () => go("left"),
  closed: () => go("ended"),
  notification: (m) => { $("note").textContent = m.message || ""; },
  purchased: (m) => answered(m.request_id, m),
  purchase_rejected: (m) => answered(m.request_id, m),
  error: (m) => setError(m.message),
};

/// What the HTTP peek says about the place: "connect", "stop" (a state was shown) or "retry".
async function preflight() {
  try {
    await api("GET", `/v1/drops/${id}/queue`);
    return "connect";
  } catch (e) {
    const to = { drop_not_found: "notfound", drop_closed: "ended", limit_reached: "bought" }[e.code];
    if (e.code === "not_in_queue") return "connect";
    if (to) { go(to); return "stop"; }
    if (e.code === "sold_out") { if (e.data && e.data.waitlist) return "connect"; go("soldout"); return "stop"; }
    if (e.code === "not_open") {
      go("scheduled");
      const wait = Date.parse(e.data.opens_at) - Date.now() + 300 + Math.random() * 2000;
      timer = setTimeout(start, Math.min(Math.max(wait, 500), 3600000));
      return "stop";
    }
    if (e.status === 401) { location.replace(loginUrl()); return "stop"; }
    return "retry";
  }
}

/// Waits before the next attempt: exponential (1 s … 30 s) with full jitter, so a
/// crowd that lost a node does not come back in one wave.
function retry(fast = false) {
  attempts += 1;
  const cap = fast ? 1500 : Math.min(30000, 1000 * 2 ** Math.min(attempts, 5));
  clearTimeout(timer);
  timer = setTimeout(start, cap / 2 + Math.random() * cap / 2);
}

async function start() {
  clearTimeout(timer);
  const next = await preflight();
  if (next === "retry") { banner(state !== "loading"); return retry(); }
  if (next === "connect") await connect();
}

async function connect() {
  let url;
  try {
    const ticket = await roomTicket(id);
    const pq = await powQuery(id, (share) => { $("note").textContent = `Checking you are not a bot… ${Math.round(share * 100)}%`; });
    $("note").textContent = "";
    url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/drops/${id}/room?ticket=${encodeURIComponent(ticket)}${pq}`;
  } catch (e) {
    if (e.status === 401) return location.replace(loginUrl());
    banner(state !== "loading");
    return retry();
  }
  let opened = false;
  const sock = new WebSocket(url);
  ws = sock;
  sock.onopen = () => { opened = true; attempts = 0; banner(false); setError(); };
  sock.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (handlers[m.type]) handlers[m.type](m);
  };
  sock.onclose = (ev) => closed(sock, ev, opened);
}

async function closed(sock, ev, opened) {
  if (ws === sock) ws = null;
  for (const rid of [...asked.keys()]) answered(rid, null, new Error("socket closed"));
  if (TERMINAL.has(state)) return;
  if (ev.code === 4008) return go("replaced");
  if (ev.code === 4003) return location.replace(loginUrl());
  if (ev.code === 4001) return (await renew()) ? connect() : location.replace(loginUrl());
  if (!opened) {
    // The upgrade was refused: the peek says why (a terminal state stops here).
    const next = await preflight();
    if (next === "stop") return;
    banner(state !== "loading");
    return retry();
  }
  banner(true);
  retry(ev.code === 1012);
}

async function purchase() {
  const btn = $("buy-btn"), err = $("buy-error");
  btn.disabled = true;
  err.textContent = "";
  const quantity = $("qty") ? Number($("qty").value) : 1;
  try {
    const r = await buyRequest({ token: c.admit.token, quantity });
    c.order = { id: r.order_id, quantity: r.quantity, pay_by: null };
    go("reserved");
    deadline(r.order_id);
  } catch (e) {
    const to = { token_expired: "expired", sold_out: "soldout", drop_closed: "ended", token_used: "bought" }[e.code];
    if (to) return go(to);
    btn.disabled = false;
    if (e.code === "insufficient_stock") err.textContent = `Only ${e.data.remaining} left: choose fewer.`;
    else if (e.code === "limit_reached") err.textContent = `You may buy ${e.data.allowance} more.`;
    else err.textContent = e.status ? e.message : "Network problem: your turn is kept, try again.";
  }
}

/// Buys on the room socket while it is open: no new connection at the crowd's busiest
/// moment, and the server runs an admitted buyer's socket on its checkout lane. Otherwise,
/// or when the socket gives no answer in 5 s or closes first, over HTTP: both answer the
/// same receipt and reasons, and the token is the idempotency key, so asking again over
/// HTTP replays a purchase the socket did make.
async function buyRequest(body) {
  if (ws && ws.readyState === WebSocket.OPEN) {
    const m = await onSocket(ws, body).catch(() => null);
    if (m && m.type === "purchased") return m;
    if (m) throw Object.assign(new Error(m.message), { status: m.http_status, code: m.code, data: m });
  }
  return api("POST", `/v1/drops/${id}/purchase`, body);
}

const asked = new Map();
let asks = 0;
function onSocket(sock, body) {
  return new Promise((resolve, reject) => {
    const rid = `buy-${++asks}`;
    const t = setTimeout(() => answered(rid, null, new Error("no answer")), 5000);
    asked.set(rid, { resolve, reject, t });
    sock.send(JSON.stringify({ type: "purchase", request_id: rid, ...body }));
  });
}

/// Settles the socket purchase `rid` (a reply, or the error that ends the wait).
function answered(rid, m, err) {
  const a = asked.get(rid);
  if (!a) return;
  asked.delete(rid);
  clearTimeout(a.t);
  if (err) a.reject(err); else a.resolve(m);
}

/// The order is written by a worker within a second or so; its payment deadline follows.
async function deadline(orderId) {
  for (let i = 0; i < 20 && !c.order.pay_by; i++) {
    try { c.order.pay_by = (await api("GET", `/v1/orders/${orderId}`)).pay_by; } catch { /* not written yet */ }
    if (!c.order.pay_by) await new Promise((r) => setTimeout(r, 1000));
  }
  tick();
}

async function loadDrop() {
  try {
    c.drop = await api("GET", `/v1/drops/${id}`);
    paused = c.drop.phase === "paused";
    $("title").textContent = c.drop.product_name;
    $("facts").textContent = `${money(c.drop.price_cents)} · ${c.drop.stock} units · up to ${c.drop.per_user_limit} per person`;
    return true;
  } catch (e) {
    if (e.code === "drop_not_found" || e.code === "bad_request" || e.status === 404 || e.status === 400) {
      c.drop = { product_name: "Unknown drop", opens_at: 0, starts_at: 0, per_user_limit: 1, price_cents: 0 };
      $("title").textContent = "Unknown drop";
      go("notfound");
      return false;
    }
    setError(`Could not load the drop (${e.message}); retrying.`);
    return null;
  }
}

if (requireLogin()) {
  go("loading");
  let ok = await loadDrop();
  while (ok === null) { await new Promise((r) => setTimeout(r, 2000 + Math.random() * 2000)); ok = await loadDrop(); }
  if (ok) { setError(); await start(); }
  setInterval(tick, 1000);
}
