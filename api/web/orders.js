// A buyer's orders: product, price, reserved time and the payment deadline counting down.
// Pay is the main action; Cancel sits apart, asks first, and each card says in place what
// happened (success or failure) until the next action on it.
import { api, header, requireLogin, el, money, clock, when, confirmStep } from "/static/app.js";
header();
const list = document.getElementById("orders");
const notes = new Map(); // order id -> { text, ok }
let orders = [];

const STATUS = {
  PENDING_PAYMENT: "Awaiting payment", CHARGING: "Payment in progress", PAID: "Paid", PAYMENT_FAILED: "Payment failed",
  SHIPPING: "Shipping", DELIVERED: "Delivered", RETURN_REQUESTED: "Return requested", RETURNED: "Returned",
  CANCELLED: "Cancelled", EXPIRED: "Expired unpaid",
};

async function act(o, action, payload) {
  if (action === "cancel") {
    const paid = o.status !== "PENDING_PAYMENT";
    const ok = await confirmStep(`Cancel order #${o.id}?`,
      `${o.quantity} × ${o.product_name}${paid ? ": you get a full refund" : ""}. The units go back to other buyers; this cannot be undone.`,
      "Cancel order", "Keep order");
    if (!ok) return;
  }
  const done = { pay: "Paid. Thank you!", cancel: "Order cancelled.", return: "Return requested." }[action];
  try {
    const r = await api("POST", `/v1/orders/${o.id}/${action}`, payload);
    const failed = r && r.status === "PAYMENT_FAILED";
    notes.set(o.id, failed ? { text: `Payment declined: ${r.failure_reason || "try another card"}.`, ok: false } : { text: done, ok: true });
  } catch (e) {
    notes.set(o.id, { text: `Could not ${action}: ${e.message}`, ok: false });
  }
  await load(true);
  const card = document.getElementById(`order-${o.id}`);
  if (card) card.querySelector("h2").focus();
}

function card(o) {
  const li = el("li", { class: `card order status-${o.status}`, id: `order-${o.id}`, "data-order": o.id, "data-status": o.status });
  const h = el("h2", { tabindex: "-1" }, `${o.product_name || "Drop " + o.drop_id}`);
  const status = el("span", { class: `badge ${o.status.toLowerCase()} status` }, STATUS[o.status] || o.status);
  const facts = el("p", { class: "facts" }, `Order #${o.id} · ${o.quantity} × · ${money(o.amount_cents)} · reserved ${when(o.reserved_at)}`);
  li.append(status, h, facts);
  if (o.pay_by) li.append(el("p", { class: "deadline", "data-pay-by": o.pay_by }, ""));
  const row = el("div", { class: "actions" });
  const button = (label, action, cls, payload) => {
    const b = el("button", { type: "button", class: cls }, label);
    b.onclick = () => { b.disabled = true; act(o, action, payload); };
    row.append(b);
  };
  if (o.status === "PENDING_PAYMENT" || o.status === "PAYMENT_FAILED") button(`Pay ${money(o.amount_cents)}`, "pay", "", { payment_method: "pm_card_ok" });
  if (o.status === "DELIVERED") button("Return", "return", "secondary");
  if (["PENDING_PAYMENT", "PAYMENT_FAILED", "PAID"].includes(o.status)) button("Cancel order…", "cancel", "link danger-text");
  if (row.children.length) li.append(row);
  const n = notes.get(o.id);
  li.append(el("p", { class: n && !n.ok ? "note error" : "note ok", role: "status" }, n ? n.text : ""));
  return li;
}

function tick() {
  for (const p of list.querySelectorAll("[data-pay-by]")) {
    const left = (Date.parse(p.dataset.payBy) - Date.now()) / 1000;
    p.textContent = left > 0 ? `Pay by ${when(p.dataset.payBy)}: ${clock(left)} left.` : "Payment deadline passed: the reservation is expiring.";
  }
}

/// Redraws the cards; while the keyboard focus is inside the list (and not forced), only
/// the cards whose status changed, so focus is never yanked away.
async function load(force = false) {
  try {
    const page = await api("GET", "/v1/orders?limit=50");
    orders = page.items;
    if (!orders.length) list.replaceChildren(el("li", { class: "card" }, "No orders yet (a fresh purchase shows up within a second)."));
    else if (force || !list.contains(document.activeElement)) list.replaceChildren(...orders.map(card));
    else for (const o of orders) { const old = document.getElementById(`order-${o.id}`); if (old && old.dataset.status !== o.status) old.replaceWith(card(o)); }
    tick();
    document.getElementById("error").textContent = "";
  } catch (e) { document.getElementById("error").textContent = `Could not load your orders: ${e.message}`; }
}

if (requireLogin()) {
  await load();
  setInterval(tick, 1000);
  setInterval(load, 5000);
}
