// The drop list as cards: product, price, a phase badge, stock and a countdown to the
// start (or to the pre-queue's opening). Sold-out and ended drops are greyed and sorted last.
import { api, header, el, money, clock, when } from "/static/app.js";
header();
const list = document.getElementById("drops");
const LABEL = { scheduled: "Coming soon", pre_queue: "Pre-queue open", live: "Live", paused: "Paused", sold_out: "Sold out", ended: "Ended" };
const ORDER = { live: 0, paused: 1, pre_queue: 2, scheduled: 3, sold_out: 4, ended: 5 };
let drops = [];

function card(d) {
  const over = d.phase === "sold_out" || d.phase === "ended";
  const li = el("li", { class: `card drop phase-${d.phase}${over ? " over" : ""}`, "data-drop": d.id });
  const h = el("h2");
  h.append(el("a", { href: `/drops/${d.id}` }, d.product_name));
  const badge = el("span", { class: `badge ${d.phase}` }, LABEL[d.phase] || d.phase);
  const facts = el("p", { class: "facts" });
  facts.append(el("strong", { class: "price" }, money(d.price_cents)), " · ",
    over ? el("span", {}, d.phase === "ended" ? "Sale over" : "All units sold") : el("span", {}, `${d.remaining} of ${d.stock} left`));
  const time = el("p", { class: "when muted" });
  li.append(badge, h, facts, time);
  return li;
}

/// The countdown line of a card, refreshed every second without touching the rest.
function timeLine(d, now) {
  const starts = Date.parse(d.starts_at), opens = Date.parse(d.opens_at);
  if (d.phase === "scheduled") return `Waiting room opens in ${clock((opens - now) / 1000)} · starts ${when(d.starts_at)}`;
  if (d.phase === "pre_queue") return `Starts in ${clock((starts - now) / 1000)}: join now, places are drawn at the start`;
  if (d.phase === "live" || d.phase === "paused") return `Started ${when(d.starts_at)} · ${d.queue_len} waiting`;
  return `Started ${when(d.starts_at)}`;
}

function tick() {
  const now = Date.now();
  for (const d of drops) {
    const li = list.querySelector(`[data-drop="${d.id}"] .when`);
    if (li) li.textContent = timeLine(d, now);
  }
}

async function load() {
  try {
    const page = await api("GET", "/v1/drops?limit=50");
    drops = page.items.sort((a, b) => (ORDER[a.phase] - ORDER[b.phase]) || (Date.parse(a.starts_at) - Date.parse(b.starts_at)));
    list.replaceChildren(...(drops.length ? drops.map(card) : [el("li", { class: "card" }, "No drops yet.")]));
    tick();
    document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = `Could not load the drops: ${e.message}`; }
}

await load();
setInterval(tick, 1000);
setInterval(load, 15000);
