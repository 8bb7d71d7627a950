// Browser end-to-end tests: a real headless Chromium (Debian's, driven by playwright-core)
// against a running VitaQueue api. Started by the Rust test api/tests/api/e2e.rs, which
// provides the server, the accounts and the drop through environment variables.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { chromium } from "playwright-core";

const env = (k) => {
  const v = process.env[k];
  assert.ok(v, `${k} must be set`);
  return v;
};
const base = env("BASE_URL");
const drop = env("DROP_ID");
const art = process.env.ARTIFACTS || "artifacts";
mkdirSync(art, { recursive: true });

async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

async function logIn(page, email, next) {
  await page.goto(`${base}/login?next=${encodeURIComponent(next)}`);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(env("PASSWORD"));
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL(`**${next}`);
}

test("a buyer signs in, joins, gets admitted, buys and sees the order", async () => {
  const b = await browser();
  try {
    const page = await b.newPage();
    await page.goto(`${base}/`);
    await page.getByRole("link", { name: "E2E Sneaker" }).waitFor();
    await page.screenshot({ path: `${art}/0-drops.png`, fullPage: true });

    await logIn(page, env("BUYER_EMAIL"), `/drops/${drop}`);
    await page.getByRole("heading", { name: "E2E Sneaker" }).waitFor();
    await page.screenshot({ path: `${art}/1-room.png`, fullPage: true });

    const buy = page.getByRole("button", { name: "Buy now" });
    await buy.waitFor({ timeout: 20000 });
    assert.match(await page.locator("#countdown").innerText(), /^\d+:\d\d$/);
    await page.screenshot({ path: `${art}/2-admitted.png`, fullPage: true });
    await buy.click();
    await page.getByText("Reserved 1!").waitFor();
    await page.screenshot({ path: `${art}/3-reserved.png`, fullPage: true });

    await page.getByRole("link", { name: "Pay for your order" }).click();
    await page.waitForURL("**/orders");
    const status = page.locator("tr[data-order] .status").first();
    await status.waitFor({ timeout: 15000 });
    assert.equal(await status.innerText(), "PENDING PAYMENT");
    await page.getByRole("button", { name: "Pay" }).click();
    await page.locator("tr[data-order] .status", { hasText: "PAID" }).waitFor();
    await page.screenshot({ path: `${art}/4-order-paid.png`, fullPage: true });
  } finally {
    await b.close();
  }
});

test("the manager console shows live numbers and pauses the drop", async () => {
  const b = await browser();
  try {
    const page = await b.newPage();
    await logIn(page, env("MANAGER_EMAIL"), "/console");
    await page.locator("#drop").selectOption(drop);
    await page.locator("#left").filter({ hasText: /^\d+$/ }).waitFor();
    await page.getByRole("button", { name: "Pause" }).click();
    await page.locator("#phase", { hasText: "paused" }).waitFor();
    await page.screenshot({ path: `${art}/5-console-paused.png`, fullPage: true });
    await page.getByRole("button", { name: "Resume" }).click();
    await page.locator("#phase", { hasText: "live" }).waitFor();
  } finally {
    await b.close();
  }
});
