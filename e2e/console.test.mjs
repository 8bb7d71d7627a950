// The manager console at both sizes: shoppers are sent away; the charts have axes and a
// history that survives a reload; buttons follow the phase with their result beside them;
// Close asks first; the create form takes price, limit, TTL, start, pre-queue window and the
// bot cost's cap and floor.
import { test } from "node:test";
import assert from "node:assert/strict";
import { env, base, browser, newPage, logIn, check, until, VIEWPORTS } from "./lib.mjs";

const drop = env("DROP_CONSOLE");

async function charts(page) {
  await page.locator("#drop").selectOption(drop);
  await page.locator("#left", { hasText: /^\d+ \/ 20$/ }).waitFor();
  // Axes: tick labels on both, the stock scale tops at a round 20 (not the raw maximum).
  const stock = page.locator("#c-stock");
  await stock.locator("polyline").waitFor({ state: "attached" });
  const labels = await stock.locator("text.axis").allTextContents();
  assert.ok(labels.includes("0") && labels.includes("20"), `y labels ${labels}`);
  assert.ok(labels.some((t) => /^\d\d:\d\d:\d\d$/.test(t)), `x labels ${labels}`);
  // History from the api: after a reload the chart has its earlier samples at once.
  const history = () => (document.querySelector("#c-queue polyline")?.getAttribute("points") || "").split(" ").length >= 3;
  await until(page, history, 10000, "three samples");
  await page.reload();
  await page.locator("#drop").selectOption(drop);
  await until(page, history, 3000, "the history after a reload");
}

async function controls(page) {
  assert.equal(await page.getByRole("button", { name: "Resume" }).isDisabled(), true, "resume disabled while live");
  await page.getByRole("button", { name: "Pause" }).click();
  await page.locator("#ctl-msg", { hasText: "Paused: done." }).waitFor();
  await page.locator("#phase-badge", { hasText: "Paused" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Pause" }).isDisabled(), true);
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator("#phase-badge", { hasText: "Live" }).waitFor();
  await page.getByLabel("Admission rate (buyers per second)").fill("25");
  await page.getByRole("button", { name: "Change rate" }).click();
  await page.locator("#rate-msg", { hasText: "Rate set to 25/s: done." }).waitFor();
}

async function closeAsks(page) {
  await page.getByRole("button", { name: "Close drop…" }).click();
  const dialog = page.getByRole("dialog", { name: /^Close E2E Sneaker\?$/ });
  await dialog.waitFor();
  await check(page, "console-confirm-close");
  await dialog.getByRole("button", { name: "Keep it open" }).click();
  assert.equal(await page.locator("#phase-badge").innerText(), "Live", "keeping it open changes nothing");
  await page.getByRole("button", { name: "Close drop…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Close drop" }).click();
  await page.locator("#phase-badge", { hasText: "Ended" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Close drop…" }).isDisabled(), true);
  assert.equal(await page.getByRole("button", { name: "Pause" }).isDisabled(), true);
  assert.match(await page.locator("#drop option:checked").innerText(), /\(Ended\)$/, "selector shows the fresh phase");
}

async function create(page) {
  for (const [id, v] of [["name", "Console Tee"], ["price", "35.50"], ["stock", "40"], ["limit", "2"], ["ttl", "90"], ["prequeue", "30"], ["pow-max", "16"], ["pow-floor", "4"]]) {
    await page.locator(`#${id}`).fill(v);
  }
  await page.getByRole("button", { name: "Create drop" }).click();
  await page.locator("#create-msg", { hasText: /^Drop #\d+ created\.$/ }).waitFor();
  await page.locator("#phase", { hasText: "€35.50 · limit 2" }).waitFor();
  assert.match(await page.locator("#phase").innerText(), /window 90 s/);
  assert.match(await page.locator("#phase-badge").innerText(), /^(Pre-queue|Coming soon)$/);
  // The bot cost's cap and floor went with it.
  const id = (await page.locator("#create-msg").innerText()).match(/#(\d+)/)[1];
  const d = await page.evaluate(async (id) => (await import("/static/app.js")).api("GET", `/v1/admin/drops/${id}`), id);
  assert.deepEqual([d.pow_max_difficulty, d.pow_difficulty], [16, 4]);
}

test("the console sends shoppers away", async () => {
  const b = await browser();
  try {
    const page = await newPage(b, VIEWPORTS[0]);
    await logIn(page, env("BUYER_DESKTOP"), "/console");
    await page.waitForURL(`${base}/`);
    assert.equal(await page.getByRole("link", { name: "Console", exact: true }).count(), 0);
  } finally {
    await b.close();
  }
});

test("the manager console at 1280×800 and 390×844", async () => {
  const b = await browser();
  try {
    for (const vp of VIEWPORTS.slice().reverse()) {
      const page = await newPage(b, vp);
      await logIn(page, env("MANAGER_EMAIL"), "/console");
      await page.getByRole("link", { name: "Console", exact: true }).waitFor();
      await charts(page);
      await check(page, "console");
      if (vp.name === "desktop") {
        await controls(page);
        await closeAsks(page);
        await create(page);
        await check(page, "console-created");
      }
    }
  } finally {
    await b.close();
  }
});
