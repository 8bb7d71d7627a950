// Shared helpers of the VitaQueue pages: the session (access and refresh token, kept for
// the tab's life, renewed before expiry and on a 401), the API client, the page header and
// small formatting helpers. No framework and no CDN: the pages must load fast while a drop
// is live.
const S = sessionStorage;
export const token = () => S.getItem("vq_token");

/// Stores a token pair from login or refresh and plans the next renewal.
export function saveSession(t) {
  S.setItem("vq_token", t.access_token);
  S.setItem("vq_refresh", t.refresh_token);
  S.setItem("vq_exp", String(Date.now() + t.expires_in * 1000));
  S.setItem("vq_life", String(t.expires_in * 1000));
  planRenewal();
}

export function clearSession() {
  for (const k of ["vq_token", "vq_refresh", "vq_exp", "vq_life", "vq_role"]) S.removeItem(k);
}

async function call(method, path, body, auth) {
  const headers = { "content-type": "application/json" };
  if (auth && token()) headers.authorization = "Bearer " + token();
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    const err = new Error((data && data.message) || res.statusText || `HTTP ${res.status}`);
    Object.assign(err, { status: res.status, code: data && data.code, data });
    throw err;
  }
  return data;
}

/// Calls the API with the access token; a 401 renews the session once and retries, so an
/// expired access token never reaches the buyer (the page's own state, such as a purchase
/// token, is untouched by the renewal).
export async function api(method, path, body) {
  try {
    return await call(method, path, body, true);
  } catch (e) {
    if (e.status !== 401 || !S.getItem("vq_refresh") || path.startsWith("/v1/auth/")) throw e;
    if (!(await renew())) throw e;
    return call(method, path, body, true);
  }
}

let renewing = null;
/// Swaps the refresh token for a new pair. One renewal at a time (refresh tokens rotate:
/// two parallel swaps would spend the same one twice). False when the session is gone.
export function renew() {
  if (!renewing) renewing = swap().finally(() => { renewing = null; });
  return renewing;
}

async function swap() {
  const refresh = S.getItem("vq_refresh");
  if (!refresh) return false;
  try {
    saveSession(await call("POST", "/v1/auth/refresh", { refresh_token: refresh }, false));
    window.dispatchEvent(new Event("vq:renewed"));
    return true;
  } catch (e) {
    if (e.status && e.status < 500 && e.status !== 429) clearSession();
    return false;
  }
}

let renewTimer = null;
/// Renews a minute (or a fifth of the lifetime, if shorter) before the access token expires.
function planRenewal() {
  clearTimeout(renewTimer);
  const exp = Number(S.getItem("vq_exp") || 0), life = Number(S.getItem("vq_life") || 0);
  if (!exp || !S.getItem("vq_refresh")) return;
  const early = Math.min(60000, life / 5);
  renewTimer = setTimeout(() => renew(), Math.max(1000, exp - early - Date.now()));
}
planRenewal();

export const loginUrl = () => "/login?next=" + encodeURIComponent(location.pathname + location.search);

export function requireLogin() {
  if (!token()) { location.replace(loginUrl()); return false; }
  return true;
}

/// The signed-in account's role ("shopper" or "manager"), from GET /v1/me (cached for the tab).
export async function role() {
  if (!token()) return null;
  const cached = S.getItem("vq_role");
  if (cached) return cached;
  try {
    const me = await api("GET", "/v1/me");
    S.setItem("vq_role", me.role);
    return me.role;
  } catch { return null; }
}

/// A single-use room ticket: browsers cannot send the Authorization header on a WebSocket
/// upgrade, and a JWT in the URL would end up in logs.
export async function roomTicket(dropId) {
  return (await api("POST", `/v1/drops/${dropId}/ticket`)).ticket;
}

export function header() {
  const h = document.createElement("header");
  const nav = el("nav", { "aria-label": "Main" });
  nav.append(el("a", { href: "/", class: "brand" }, "VitaQueue"), el("a", { href: "/" }, "Drops"));
  if (token()) nav.append(el("a", { href: "/orders" }, "My orders"));
  h.append(nav, el("span", { class: "spacer" }));
  if (token()) {
    const out = el("button", { class: "secondary", type: "button" }, "Log out");
    out.onclick = async () => {
      try { await api("POST", "/v1/auth/logout"); } catch { /* already gone */ }
      clearSession();
      location.href = "/";
    };
    h.append(out);
    role().then((r) => { if (r === "manager") nav.append(el("a", { href: "/console" }, "Console")); });
  } else {
    h.append(el("a", { href: loginUrl() }, "Log in"), el("a", { href: "/signup", class: "button" }, "Sign up"));
  }
  document.body.prepend(h);
}

export function el(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== "") e.textContent = text;
  return e;
}

export const money = (cents) => (cents / 100).toLocaleString("en-GB", { style: "currency", currency: "EUR" });

/// "4:05" for short spans, "2 h 05 min" or "3 d 4 h" for long ones.
export function clock(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s >= 86400) return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

export const when = (iso) => new Date(iso).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });

/// Asks before a step that cannot be undone; resolves true when confirmed. A modal
/// <dialog>: focus moves into it, Escape cancels, and the safe choice has the focus.
export function confirmStep(title, text, yes, no = "Keep it") {
  return new Promise((resolve) => {
    const d = el("dialog", { "aria-labelledby": "dlg-h", class: "confirm" });
    const ok = el("button", { type: "button", class: "danger" }, yes);
    const cancel = el("button", { type: "button", class: "secondary" }, no);
    const row = el("p", { class: "row" });
    row.append(cancel, ok);
    d.append(el("h2", { id: "dlg-h" }, title), el("p", {}, text), row);
    document.body.append(d);
    const done = (v) => { d.close(); d.remove(); resolve(v); };
    ok.onclick = () => done(true);
    cancel.onclick = () => done(false);
    d.addEventListener("cancel", (ev) => { ev.preventDefault(); done(false); });
    d.showModal();
    cancel.focus();
  });
}

// The account id (JWT subject) the proof of work is bound to.
const account = () => JSON.parse(atob(token().split(".")[1].replace(/-/g, "+").replace(/_/g, "/"))).sub;

// Solves a challenge {nonce, difficulty} for a drop in a Web Worker; `progress(share)` is
// told how far along it roughly is. Resolves to "<nonce>.<counter>".
export function solvePow(challenge, drop, progress = () => {}) {
  return new Promise((resolve, reject) => {
    const w = new Worker("/static/pow-worker.js");
    w.onmessage = (ev) => {
      if (!ev.data.done) return progress(Math.min(0.99, ev.data.hashes / ev.data.expected));
      w.terminate();
      resolve(`${challenge.nonce}.${ev.data.counter}`);
    };
    w.onerror = (e) => { w.terminate(); reject(e); };
    w.postMessage({ nonce: challenge.nonce, account: account(), drop: String(drop), difficulty: challenge.difficulty });
  });
}

// The `pow=` query part a room join needs ("" when the drop asks for no work).
export async function powQuery(drop, progress) {
  const c = await api("GET", `/v1/drops/${drop}/challenge`);
  if (!c.difficulty) return "";
  // The note shows at once: a lucky solve may end before the worker's first report.
  progress(0);
  return "&pow=" + encodeURIComponent(await solvePow(c, drop, progress));
}
