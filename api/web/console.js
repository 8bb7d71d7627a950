// The manager console: live numbers and charts of one drop (history from the api, so it
// survives a reload), controls enabled by the drop's phase with their result beside them,
// a confirmation before Close, and the create form. Shoppers are sent to the drop list.
// The fairness report and simulator are in console-fair.js.
import { api, header, requireLogin, role, el, money, confirmStep } from "/static/app.js";
import { draw } from "/static/chart.js";
import { showFairness, wireSimulator } from "/static/console-fair.js";

header();
const $ = (x) => document.getElementById(x);
const LABEL = { scheduled: "Coming soon", pre_queue: "Pre-queue", live: "Live", paused: "Paused", sold_out: "Sold out", ended: "Ended" };
let current = null;
const fail = (e) => { $("error").textContent = e.message; };
const say = (id, text, ok = true) => { $(id).textContent = text; $(id).classList.toggle("bad", !ok); };

const optionText = (d) => `#${d.id} ${d.product_name} (${LABEL[d.phase] || d.phase})`;

async function loadDrops(select) {
  const page = await api("GET", "/v1/admin/drops?limit=100");
  const keep = select || $("drop").value;
  $("drop").replaceChildren(...page.items.map((d) => el("option", { value: d.id }, optionText(d))));
  if (keep && page.items.some((d) => String(d.id) === String(keep))) $("drop").value = String(keep);
}

/// Buttons only where the phase allows them.
function enable(phase) {
  const open = phase !== "ended";
  $("pause").disabled = !["scheduled", "pre_queue", "live", "sold_out"].includes(phase);
  $("resume").disabled = phase !== "paused";
  $("close").disabled = !open;
  $("set-rate").disabled = !open;
  $("rate").disabled = !open;
}

const REASON = { purchase_p99: "purchase p99 over target", order_lag: "orders lagging", recover: "recovering", no_shows: "no-shows", bounds: "band changed", manual: "set by hand" };

/// The rate line: each sample's rate, and a step at every recorded change.
function ratePoints(samples, changes) {
  const pts = samples.filter((s) => s.rate != null).map((s) => [s.t_ms, s.rate]);
  const t0 = pts.length ? pts[0][0] : 0;
  for (const c of changes) if (c.t_ms >= t0) pts.push([c.t_ms - 1, c.old], [c.t_ms, c.new]);
  return pts.sort((a, b) => a[0] - b[0]);
}

function rateChanges(changes) {
  $("rate-changes").replaceChildren(...changes.slice(-5).reverse().map((c) =>
    el("li", {}, `${new Date(c.t_ms).toLocaleTimeString("en-GB")}: ${c.old} → ${c.new}/s (${REASON[c.reason] || c.reason})`)));
}

function charts(d, samples, changes = []) {
  const adm = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i], dt = (b.t_ms - a.t_ms) / 1000;
    if (dt > 0) adm.push([b.t_ms, Math.max(0, (b.admitted_total - a.admitted_total) / dt)]);
  }
  const last = adm.length ? adm[adm.length - 1][1] : null;
  $("adm").textContent = last === null ? "–" : last.toFixed(1);
  $("c-stock-sum").textContent = draw($("c-stock"), [{ label: "left", cls: "s1", points: samples.map((s) => [s.t_ms, s.remaining]).concat([[Date.now(), d.stats.remaining]]) }]);
  $("c-queue-sum").textContent = draw($("c-queue"), [{ label: "waiting", cls: "s2", points: samples.map((s) => [s.t_ms, s.queue_len]) }]);
  $("c-adm-sum").textContent = draw($("c-adm"), [{ label: "per second", cls: "s3", points: adm.map(([t, v]) => [t, Math.round(v * 10) / 10]) },
    { label: "rate", cls: "s1", points: ratePoints(samples, changes) }]);
  rateChanges(changes);
}

async function poll() {
  const id = $("drop").value;
  if (!id) return;
  try {
    const [d, h] = await Promise.all([api("GET", `/v1/admin/drops/${id}`), api("GET", `/v1/admin/drops/${id}/history`)]);
    current = d;
    const s = d.stats;
    $("queue").textContent = s.queue_len;
    $("left").textContent = `${s.remaining} / ${d.stock}`;
    $("holders").textContent = s.live_holders;
    $("phase-badge").textContent = LABEL[d.phase] || d.phase;
    $("phase-badge").className = `badge ${d.phase}`;
    const pilot = d.autopilot ? ` · autopilot ${d.autopilot.min_rate}–${d.autopilot.max_rate}/s, now ${d.rate_now}/s${d.rate_reason ? ` (${REASON[d.rate_reason] || d.rate_reason})` : ""}` : "";
    $("phase").textContent = `${money(d.price_cents)} · limit ${d.per_user_limit} · rate ${d.admission_rate}/s${pilot} · window ${d.token_ttl_s} s · ${d.orders_in_db} orders · starts ${new Date(d.starts_at).toLocaleString("en-GB")}`;
    const opt = $("drop").selectedOptions[0];
    if (opt) opt.textContent = optionText(d);
    if (document.activeElement !== $("rate")) $("rate").value = d.rate_now ?? d.admission_rate;
    $("autopilot-note").hidden = !d.autopilot;
    enable(d.phase);
    charts(d, h.samples, h.rate_changes || []);
    $("error").textContent = "";
  } catch (e) { fail(e); }
}

async function control(msgId, what, path, method = "POST", body) {
  say(msgId, "Working…");
  try {
    await api(method, `/v1/admin/drops/${$("drop").value}${path}`, body);
    say(msgId, `${what}: done.`);
    await poll();
  } catch (e) { say(msgId, `${what} failed: ${e.message}`, false); }
}

$("set-rate").onclick = () => control("rate-msg", `Rate set to ${$("rate").value}/s`, "", "PATCH", { admission_rate: Number($("rate").value) });
$("pause").onclick = () => control("ctl-msg", "Paused", "/pause");
$("resume").onclick = () => control("ctl-msg", "Resumed", "/resume");
$("close").onclick = async () => {
  const name = current ? current.product_name : "this drop";
  const ok = await confirmStep(`Close ${name}?`, "Closing ends the sale for good: everyone waiting is told it ended and no one can buy. Orders already made stay.", "Close drop", "Keep it open");
  if (ok) control("ctl-msg", "Closed", "/close");
};
$("ap-on").onchange = () => {
  for (const id of ["ap-min", "ap-max", "ap-p99", "ap-lag"]) $(id).disabled = !$("ap-on").checked;
};
$("drop").onchange = () => { say("ctl-msg", ""); say("rate-msg", ""); poll(); showFairness($("drop").value); };

/// Webhook endpoints that were switched off for failing too long: integrators stopped
/// hearing about orders, so the console says so until someone re-enables or deletes them.
async function webhookNotice() {
  const list = await api("GET", "/v1/admin/webhooks");
  const off = list.filter((w) => !w.enabled && w.disabled_reason === "failing");
  $("webhook-notice").hidden = off.length === 0;
  $("webhook-notice").textContent = off.length === 0 ? "" :
    `Webhook endpoint${off.length > 1 ? "s" : ""} disabled after failing for too long: ${off.map((w) => w.url).join(", ")}. ` +
    "Fix the receiver, then POST /v1/admin/webhooks/{id}/enable.";
}

function defaultStart() {
  const t = new Date(Date.now() + 5 * 60000);
  t.setSeconds(0, 0);
  return new Date(t.getTime() - t.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
}

$("create").onsubmit = async (ev) => {
  ev.preventDefault();
  const body = {
    product_name: $("name").value, price_cents: Math.round(Number($("price").value) * 100), stock: Number($("stock").value),
    per_user_limit: Number($("limit").value), admission_rate: Number($("newrate").value), token_ttl_s: Number($("ttl").value),
    starts_at: new Date($("start").value).toISOString(), prequeue_s: Math.round(Number($("prequeue").value) * 60),
    pow_max_difficulty: Number($("pow-max").value), pow_difficulty: Number($("pow-floor").value),
  };
  if ($("ap-on").checked) {
    body.autopilot = { min_rate: Number($("ap-min").value), max_rate: Number($("ap-max").value),
      purchase_p99_ms: Number($("ap-p99").value), order_lag_s: Number($("ap-lag").value) };
  }
  say("create-msg", "Creating…");
  try {
    const d = await api("POST", "/v1/admin/drops", body);
    say("create-msg", `Drop #${d.id} created.`);
    await loadDrops(d.id);
    await poll();
    showFairness(d.id);
  } catch (e) {
    const fields = e.data && e.data.fields ? ": " + Object.entries(e.data.fields).map(([k, v]) => `${k} ${v}`).join("; ") : "";
    say("create-msg", `Not created: ${e.message}${fields}`, false);
  }
};

if (requireLogin()) {
  if ((await role()) !== "manager") location.replace("/");
  else {
    $("console").hidden = false;
    $("start").value = defaultStart();
    wireSimulator();
    try { await loadDrops(); } catch (e) { fail(e); }
    await poll();
    showFairness($("drop").value);
    setInterval(poll, 2000);
    setInterval(() => loadDrops().catch(fail), 15000);
    webhookNotice().catch(fail);
    setInterval(() => webhookNotice().catch(fail), 15000);
  }
}
