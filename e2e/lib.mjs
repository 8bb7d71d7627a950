// Shared helpers of the browser tests: the browser (Debian's Chromium via playwright-core),
// the two viewports, log-in, and `check`: a screenshot, axe-core (0 violations), no
// sideways scroll, and no script error or CSP violation on the page.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, existsSync } from "node:fs";
import { chromium } from "playwright-core";

export const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} must be set`);
  return v;
};
export const base = env("BASE_URL");
export const art = process.env.ARTIFACTS || "artifacts";
mkdirSync(art, { recursive: true });
const axeSource = readFileSync(new URL("./node_modules/axe-core/axe.min.js", import.meta.url), "utf8");

export const VIEWPORTS = [
  { name: "desktop", width: 1280, height: 800 },
  { name: "phone", width: 390, height: 844 },
];

export function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

/// A page at `vp`, recording script errors and CSP violations for `check`.
export async function newPage(b, vp) {
  const ctx = await b.newContext({ viewport: { width: vp.width, height: vp.height }, locale: "en-GB" });
  const page = await ctx.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) page.problems.push(`CSP: ${m.text()}`);
  });
  page.vp = vp;
  return page;
}

export async function logIn(page, email, next) {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(env("PASSWORD"));
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`**${next}`);
}

/// Screenshot `name` (per viewport), then: axe reports no violation, the page does not
/// scroll sideways, and no script error or CSP violation happened.
export async function check(page, name) {
  await page.screenshot({ path: `${art}/${name}-${page.vp.name}.png`, fullPage: true });
  if (!(await page.evaluate(() => typeof window.axe !== "undefined"))) await page.evaluate(axeSource);
  const res = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const found = res.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  assert.deepEqual(found, [], `axe on ${name} (${page.vp.name})`);
  const wide = await page.evaluate(() => [document.scrollingElement.scrollWidth, window.innerWidth]);
  assert.ok(wide[0] <= wide[1], `${name} (${page.vp.name}) scrolls sideways: ${wide[0]} > ${wide[1]}`);
  assert.deepEqual(page.problems, [], `${name} (${page.vp.name}) had script problems`);
}

/// The screen the waiting room shows (its data-state), once it is `state`.
export async function roomState(page, state, timeout = 15000) {
  await page.locator(`#screen[data-state="${state}"]`).waitFor({ timeout });
}

/// The API as a manager, from the test (pausing, raising caps…), outside the browser.
export async function managerApi() {
  const res = await fetch(`${base}/v1/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: env("MANAGER_EMAIL"), password: env("PASSWORD") }),
  });
  assert.equal(res.status, 200, "manager login");
  const { access_token } = await res.json();
  return async (method, path, body) => {
    const r = await fetch(`${base}${path}`, {
      method, headers: { "content-type": "application/json", authorization: `Bearer ${access_token}` },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await r.text();
    assert.ok(r.ok, `${method} ${path}: ${r.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
}

/// The sign-up code the Rust side read from the test mail sink and wrote to a file.
export async function mailedCode(file, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (existsSync(file)) {
      const code = readFileSync(file, "utf8").trim();
      if (/^\d{6}$/.test(code)) return code;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no code in ${file}`);
}

/// Polls `fn` in the page until it returns true (Playwright's waitForFunction polls with
/// eval, which the pages' CSP rightly forbids).
export async function until(page, fn, timeout = 10000, what = "condition") {
  const end = Date.now() + timeout;
  while (Date.now() < end) {
    if (await page.evaluate(fn)) return;
    await page.waitForTimeout(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}
