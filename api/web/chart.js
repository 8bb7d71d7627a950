// A small SVG line chart with axes: y from 0 to a "nice" maximum of the data (1, 2 or 5
// times a power of ten), x labelled in clock time. Built with DOM calls (no innerHTML of
// data) so the strict CSP holds; the numbers are also given as a text summary for screen
// readers.
const NS = "http://www.w3.org/2000/svg";
const H = 200, L = 44, R = 12, T = 10, B = 28;

function node(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

/// The smallest 1/2/5×10^n at or above `v` (at least 1), for a readable axis.
export function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const hhmm = (ms) => new Date(ms).toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", second: "2-digit" });

/// Draws `series` ([{label, cls, points: [[t_ms, value]...]}]) into `svg`; returns a
/// one-line summary (latest values) for the figure's caption.
export function draw(svg, series) {
  // One user unit per CSS pixel, so labels keep their size on a phone.
  const W = Math.max(240, Math.round(svg.getBoundingClientRect().width) || 600);
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.replaceChildren();
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    svg.append(node("text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis" }, "No samples yet"));
    return "no samples yet";
  }
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(t0 + 1000, ...all.map((p) => p[0]));
  // At least 0..5, so an idle series gets whole-number ticks instead of 0.25 steps.
  const top = niceMax(Math.max(5, ...all.map((p) => p[1])));
  const steps = String(top)[0] === "2" ? 4 : 5;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / top) * (H - T - B);
  for (let i = 0; i <= steps; i++) {
    const v = (top * i) / steps;
    svg.append(node("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
      node("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, Number.isInteger(v) ? String(v) : v.toFixed(1)));
  }
  for (const t of W < 400 ? [t0, t1] : [t0, (t0 + t1) / 2, t1]) {
    svg.append(node("text", { x: x(t), y: H - 8, "text-anchor": t === t0 ? "start" : t === t1 ? "end" : "middle", class: "axis" }, hhmm(t)));
  }
  svg.append(node("line", { x1: L, x2: L, y1: T, y2: H - B, class: "axis-line" }),
    node("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, class: "axis-line" }));
  for (const s of series) {
    const pts = s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    svg.append(node("polyline", { points: pts, class: `series ${s.cls}` }));
  }
  return series.map((s) => `${s.label} ${s.points.length ? s.points[s.points.length - 1][1] : "–"}`).join(", ");
}
