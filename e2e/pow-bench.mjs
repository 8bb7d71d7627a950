// Median proof-of-work solve time per difficulty in a real headless Chromium (Debian's,
// driven by playwright-core), running the page's own worker (api/web/pow-worker.js)
// served by a small HTTP server this script spawns on loopback.
// Usage: node pow-bench.mjs [bits,bits,...] [samples]   e.g. node pow-bench.mjs 12,16,20 15
import { createServer } from "node:http";
import { readFileSync } from "node:fs";
import { randomBytes, randomUUID } from "node:crypto";
import { chromium } from "playwright-core";

const bits = (process.argv[2] || "12,16,20").split(",").map(Number);
const samples = Number(process.argv[3] || 15);
const worker = readFileSync(new URL("../api/web/pow-worker.js", import.meta.url));
const server = createServer((req, res) => {
  if (req.url === "/static/pow-worker.js") {
    res.writeHead(200, { "content-type": "text/javascript" });
    return res.end(worker);
  }
  res.writeHead(200, { "content-type": "text/html" });
  res.end("<!doctype html><title>pow</title>");
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
});
const page = await browser.newPage();
await page.goto(base);
const solve = (c) => page.evaluate((c) => new Promise((resolve) => {
  const w = new Worker("/static/pow-worker.js");
  w.onmessage = (ev) => { if (ev.data.done) { w.terminate(); resolve(ev.data); } };
  w.postMessage(c);
}), c);
const rows = [];
for (const b of bits) {
  const ms = [], hashes = [];
  for (let i = 0; i < samples; i++) {
    const r = await solve({ nonce: randomBytes(16).toString("hex"), account: randomUUID(), drop: String(i + 1), difficulty: b });
    ms.push(r.ms); hashes.push(r.hashes);
  }
  ms.sort((x, y) => x - y); hashes.sort((x, y) => x - y);
  const at = (q) => ms[Math.round((ms.length - 1) * q)];
  rows.push({ bits: b, samples, median_ms: at(0.5), p90_ms: at(0.9), max_ms: at(1), median_hashes: hashes[hashes.length >> 1] });
}
console.log("bits  samples  median ms   p90 ms    max ms  median hashes");
for (const r of rows) {
  console.log(`${String(r.bits).padStart(4)}  ${String(r.samples).padStart(7)}  ${r.median_ms.toFixed(1).padStart(9)}  ${r.p90_ms.toFixed(1).padStart(7)}  ${r.max_ms.toFixed(1).padStart(8)}  ${String(r.median_hashes).padStart(13)}`);
}
await browser.close();
server.close();
