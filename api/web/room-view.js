// The waiting room's screens: one per state, each a heading, a body and a short sentence
// for screen readers (announced once, when the state is entered). Values that change every
// second (countdowns, "updated N s ago") live in elements with ids that `tick` in room.js
// rewrites; they are never in a live region.
import { el, money, clock, when } from "/static/app.js";

const p = (text, cls = "") => el("p", cls ? { class: cls } : {}, text);
const link = (href, text, cls = "") => el("a", cls ? { href, class: cls } : { href }, text);
const keepOpen = () => p("Keep this tab open; reloading is safe: you keep your place.", "muted");

/// "3–5 min" from a low and high estimate in seconds (the high one may be missing).
export function etaText(lo, hi) {
  if (lo === undefined || lo === null) return "";
  const m = (s) => Math.max(1, Math.ceil(s / 60));
  if (hi === undefined || hi === null || hi < lo) hi = lo;
  if (hi < 60) return "less than a minute";
  if (m(lo) === m(hi)) return `about ${m(lo)} min`;
  return `${m(lo)}–${m(hi)} min`;
}

/// The odds line from the optional `units_left` and `chance` of a position push.
export function oddsText(m) {
  const chance = { likely: "You will likely get one.", unlikely: "It may sell out before your turn.", none: "Units will probably run out before your turn." };
  const parts = [];
  if (typeof m.units_left === "number") parts.push(`${m.units_left} units left.`);
  if (chance[m.chance]) parts.push(chance[m.chance]);
  return parts.join(" ");
}

function place(c) {
  const m = c.pos || {};
  const box = el("div", { class: "place" });
  box.append(el("p", { class: "big", id: "pos" }, m.position ? `#${m.position}` : "…"),
    p(m.ahead !== undefined ? `${m.ahead} ahead of you` : "", "ahead"));
  return box;
}

function progress(c) {
  const bar = el("progress", { id: "bar", max: "1", "aria-label": "Progress to the front of the line" });
  bar.value = c.progress || 0;
  return bar;
}

const screens = {
  loading: () => ({ title: "Connecting…", body: [p("Finding your place in the waiting room.")] }),
  notfound: () => ({
    title: "Drop not found", say: "This drop does not exist.",
    body: [p("There is no drop with this number. It may have been removed."), link("/", "See all drops", "button")],
  }),
  scheduled: (c) => ({
    title: "The waiting room opens soon", say: "The waiting room is not open yet.",
    body: [el("p", { class: "big", id: "cd-open" }, ""), p(`It opens ${when(c.drop.opens_at)}; the sale starts ${when(c.drop.starts_at)}.`),
      p("Keep this tab open: it joins by itself when the room opens.", "muted")],
  }),
  prequeue: (c) => ({
    title: "You're in the pre-queue", say: "You are in the pre-queue. Your place is drawn at the start.",
    body: [p("The sale starts in"), el("p", { class: "big", id: "cd-start" }, ""),
      p(`Your place is drawn at the start (${when(c.drop.starts_at)}): everyone in the pre-queue gets a random place, so there is no need to hurry.`),
      keepOpen()],
  }),
  waiting: (c) => ({
    title: "You're in line", say: "You are in line.",
    body: [place(c), progress(c), p(`Estimated wait: ${etaText(c.pos.eta_s, c.pos.eta_hi_s)}`, "eta"),
      el("p", { class: "odds", id: "odds" }, oddsText(c.pos)), el("p", { class: "muted", id: "ago" }, ""), keepOpen()],
  }),
  paused: (c) => ({
    title: "The sale is paused", say: "The sale is paused. You keep your place.",
    body: [place(c), p(`You keep your place. The wait estimate is frozen while paused${c.frozenEta ? ` (it was ${c.frozenEta})` : ""}.`, "eta"), keepOpen()],
  }),
  waitlist: () => ({
    title: "Sold out for now", say: "Sold out for now. You keep your place.",
    body: [p("All units are reserved, but some may come back if a buyer does not pay. You keep your place: the next in line get them."), keepOpen()],
  }),
  admitted: (c) => ({
    title: "It's your turn!", say: "It is your turn. You can buy now.",
    body: [buyCard(c)],
  }),
  reserved: (c) => ({
    title: "Reserved!", say: "Reserved. Pay before the deadline.",
    body: [p(`Order #${c.order.id}: ${c.order.quantity} × ${c.drop.product_name}, ${money(c.order.quantity * c.drop.price_cents)}.`, "lead"),
      el("p", { id: "pay-by" }, c.order.pay_by ? `Pay by ${when(c.order.pay_by)}.` : "Your order is being written; the payment deadline shows in a moment."),
      link(`/orders#order-${c.order.id}`, "Pay for your order", "button")],
  }),
  soldout: () => ({
    title: "Sold out", say: "Sold out.",
    body: [p("All units are gone. Thank you for waiting."), link("/", "See other drops", "button")],
  }),
  ended: () => ({
    title: "This drop has ended", say: "This drop has ended.",
    body: [p("The sale is over."), link("/", "See other drops", "button")],
  }),
  bought: (c) => ({
    title: "You already bought this drop", say: "You already bought this drop.",
    body: [p(`The limit is ${c.drop.per_user_limit} per person, and your account has reached it.`), link("/orders", "See my orders", "button")],
  }),
  expired: () => ({
    title: "Your purchase window expired", say: "Your purchase window expired.",
    body: [p("You did not buy in time. You can join the queue again, at the back."), el("button", { type: "button", id: "again" }, "Join the queue again")],
  }),
  left: () => ({
    title: "You left the queue", say: "You left the queue.",
    body: [el("button", { type: "button", id: "again" }, "Join the queue again")],
  }),
  replaced: () => ({
    title: "Open in another tab", say: "This waiting room is open in another tab.",
    body: [p("You opened this waiting room in another tab or window; that one keeps your place."), el("button", { type: "button", id: "again" }, "Use this tab instead")],
  }),
};

function buyCard(c) {
  const box = el("div", { class: "buy" });
  box.append(el("p", { class: "big price" }, money(c.drop.price_cents)),
    el("p", {}, ""), el("p", { class: "muted" }, `Up to ${c.drop.per_user_limit} per person.`));
  const line = box.children[1];
  line.append("Your window closes in ", el("strong", { id: "countdown" }, clock((c.admit.expires_at_ms - Date.now()) / 1000)), ".");
  if (c.drop.per_user_limit > 1) {
    box.append(el("label", { for: "qty" }, "Quantity"),
      el("input", { id: "qty", type: "number", min: "1", max: String(c.drop.per_user_limit), value: "1" }));
  }
  box.append(el("p", {}, ""), el("p", { id: "buy-error", class: "error", role: "alert" }));
  box.children[box.children.length - 2].append(el("button", { type: "button", id: "buy-btn", class: "big-button" }, "Buy now"));
  return box;
}

/// Renders `state` into the screen section; returns what to announce.
export function render(state, c) {
  const s = screens[state](c);
  const section = document.getElementById("screen");
  section.dataset.state = state;
  document.getElementById("screen-h").textContent = s.title;
  document.getElementById("screen-body").replaceChildren(...s.body);
  return s.say || "";
}
