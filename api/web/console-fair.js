// The console's fairness report (GET /v1/drops/{id}/fairness: the commitment, the seed once
// revealed, and the `report` of how the drop went) and the what-if simulator
// (POST /v1/admin/simulate). Every field is optional here: what the api does not send is
// not shown.
import { api, el } from "/static/app.js";

const $ = (x) => document.getElementById(x);
const num = (v, digits = 0) => (typeof v === "number" ? v.toLocaleString("en-GB", { maximumFractionDigits: digits }) : null);
const secs = (v) => (typeof v === "number" ? `${num(v, 1)} s` : null);

/// A definition list of [label, value] rows, skipping absent values.
function facts(rows) {
  const dl = el("dl", { class: "facts-list" });
  for (const [k, v] of rows) {
    if (v === null || v === undefined || v === "") continue;
    dl.append(el("dt", {}, k), el("dd", {}, String(v)));
  }
  return dl;
}

function reportRows(r) {
  const fifo = r.fifo || {}, out = r.outcomes || {};
  return [
    ["Status", typeof r.final === "boolean" ? (r.final ? "Final" : "Provisional (drop still running)") : null],
    ["Joiners", num(r.joiners)],
    ["Pre-queue joiners", num(r.prequeue_joiners)],
    ["FIFO order (Kendall tau)", num(fifo.kendall_tau, 3)],
    ["FIFO inversions", num(fifo.inversions)],
    ["Most admissions in any second", num(r.max_admissions_in_any_second)],
    ["Tokens per unit", num(r.tokens_per_unit, 2)],
    ["Bought", num(out.bought)],
    ["Told sold out", num(out.sold_out_told)],
    ["Sold out at position", num(out.sold_out_at)],
    ["Windows expired", num(out.expired)],
    ["Left the queue", num(out.left)],
    ["Sold out after", secs(r.sell_out_s)],
  ];
}

let shown = null;
export async function showFairness(id) {
  shown = id;
  const box = $("fair-report");
  if (!id) return box.replaceChildren(el("p", { class: "muted" }, "Pick a drop."));
  try {
    const f = await api("GET", `/v1/drops/${id}/fairness`);
    if (shown !== id) return;
    const parts = [facts([
      ["Draw rule", f.rule],
      ["Seed commitment (SHA-256)", f.shuffle_commitment],
      ["Seed", f.shuffle_seed || "revealed when the sale starts"],
      ["Pre-queue places drawn", f.draw ? num(f.draw.total) : null],
    ])];
    if (f.report) parts.push(el("h3", {}, "How the drop went"), facts(reportRows(f.report)));
    else parts.push(el("p", { class: "muted" }, "No report for this drop yet."));
    box.replaceChildren(...parts);
  } catch (e) {
    box.replaceChildren(el("p", { class: "error" }, `Could not load the fairness report: ${e.message}`));
  }
}

const FIELDS = ["buyers", "stock", "rate", "token_ttl_s", "abandon", "fail", "overbook"];
const INPUT = { buyers: "sim-buyers", stock: "sim-stock", rate: "sim-rate", token_ttl_s: "sim-ttl", abandon: "sim-abandon", fail: "sim-fail", overbook: "sim-overbook" };

function clearFieldErrors() {
  for (const f of FIELDS) {
    const input = $(INPUT[f]);
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
    const old = $(`${INPUT[f]}-err`);
    if (old) old.remove();
  }
}

function fieldErrors(fields) {
  for (const [f, msg] of Object.entries(fields || {})) {
    const input = $(INPUT[f]);
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", `${INPUT[f]}-err`);
    input.after(el("p", { class: "error field-error", id: `${INPUT[f]}-err` }, msg));
  }
}

export function wireSimulator() {
  $("sim").onsubmit = async (ev) => {
    ev.preventDefault();
    clearFieldErrors();
    const body = Object.fromEntries(FIELDS.map((f) => [f, Number($(INPUT[f]).value)]));
    $("sim-msg").textContent = "Simulating…";
    $("sim-msg").classList.remove("bad");
    try {
      const r = await api("POST", "/v1/admin/simulate", body);
      $("sim-msg").textContent = "Done.";
      $("sim-out").replaceChildren(facts([
        ["Sells out after", secs(r.sell_out_s) || "does not sell out"],
        ["Wait, median", secs(r.wait_p50_s)],
        ["Wait, 90th percentile", secs(r.wait_p90_s)],
        ["Wait, 99th percentile", secs(r.wait_p99_s)],
        ["Tokens per unit", num(r.tokens_per_unit, 2)],
        ["Buyers served", typeof r.served_share === "number" ? `${num(r.served_share * 100, 1)} %` : null],
      ]));
    } catch (e) {
      $("sim-msg").textContent = `Not simulated: ${e.message}`;
      $("sim-msg").classList.add("bad");
      if (e.data && e.data.fields) fieldErrors(e.data.fields);
    }
  };
}
