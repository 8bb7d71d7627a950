// Shared helpers of the VitaQueue pages: the API client (bearer token kept for the tab's
// session only) and the page header. No framework and no CDN: the pages must load fast
// even while a drop is live.
export const token = () => sessionStorage.getItem("vq_token");

export async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  if (token()) headers.authorization = "Bearer " + token();
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!res.ok) {
    if (res.status === 401) sessionStorage.removeItem("vq_token");
    const err = new Error((data && data.message) || res.statusText);
    Object.assign(err, { status: res.status, code: data && data.code, data });
    throw err;
  }
  return data;
}

/// Swaps the refresh token for a new pair (the access token expired); false when the
/// session is gone and the buyer must sign in again.
export async function renew() {
  const refresh = sessionStorage.getItem("vq_refresh");
  if (!refresh) return false;
  try {
    const t = await api("POST", "/v1/auth/refresh", { refresh_token: refresh });
    sessionStorage.setItem("vq_token", t.access_token);
    sessionStorage.setItem("vq_refresh", t.refresh_token);
    return true;
  } catch {
    sessionStorage.removeItem("vq_refresh");
    return false;
  }
}

/// A single-use room ticket: browsers cannot send the Authorization header on a WebSocket
/// upgrade, and a JWT in the URL would end up in logs.
export async function roomTicket(dropId) {
  try {
    return (await api("POST", `/v1/drops/${dropId}/ticket`)).ticket;
  } catch (e) {
    if (e.status === 401 && (await renew())) return (await api("POST", `/v1/drops/${dropId}/ticket`)).ticket;
    throw e;
  }
}

export function requireLogin() {
  if (!token()) location.href = "/login?next=" + encodeURIComponent(location.pathname);
}

export function header() {
  const h = document.createElement("header");
  h.innerHTML = `<a href="/">VitaQueue</a><a href="/orders">My orders</a><a href="/console">Console</a>
    <span class="spacer"></span>${token() ? '<button class="secondary" id="logout">Log out</button>' : '<a href="/login">Log in</a>'}`;
  document.body.prepend(h);
  const out = h.querySelector("#logout");
  if (out) out.onclick = async () => {
    try { await api("POST", "/v1/auth/logout"); } catch { /* already gone */ }
    sessionStorage.removeItem("vq_token");
    sessionStorage.removeItem("vq_refresh");
    location.href = "/";
  };
}

export function el(tag, attrs = {}, text = "") {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.textContent = text;
  return e;
}

export const money = (cents) => (cents / 100).toLocaleString(undefined, { style: "currency", currency: "EUR" });

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
  return "&pow=" + encodeURIComponent(await solvePow(c, drop, progress));
}
