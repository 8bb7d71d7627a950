// The buyer's whole path, on a desktop and on a phone (each its own account and drop): sign-up (e-mail → code → profile), the waiting room
// (waiting, paused with a frozen estimate, reload keeps the place), admission, a purchase
// on the room socket while the access token has expired (renewed after), then the order page:
// pay, a cancel that asks first, and the results in place.
import { test } from "node:test";
import { rmSync } from "node:fs";
import assert from "node:assert/strict";
import { env, base, art, browser, newPage, check, roomState, managerApi, mailedCode, VIEWPORTS } from "./lib.mjs";

async function signUp(page, drop, email) {
  await page.goto(`${base}/signup?next=${encodeURIComponent(`/drops/${drop}`)}`);
  await check(page, "signup-1-email");
  await page.getByLabel("Email").fill(email);
  rmSync(`${art}/mail-code.txt`, { force: true }); // only this sign-up's code counts
  await page.getByRole("button", { name: "Send me a code" }).click();
  await page.getByLabel("Code from the e-mail").waitFor();
  await check(page, "signup-2-code");
  await page.getByLabel("Code from the e-mail").fill(await mailedCode(`${art}/mail-code.txt`));
  await page.getByRole("button", { name: "Continue" }).click();
  await page.getByLabel("Full name").fill("Erika Mustermann");
  await page.getByLabel("Delivery address").fill("Lindenstrasse 3\n10969 Berlin");
  await page.getByLabel("Phone").fill("+49 30 1234567");
  await page.getByLabel(/^Password/).fill(env("PASSWORD"));
  await check(page, "signup-3-profile");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.waitForURL(`**/drops/${drop}`);
}

async function waitAndPause(page, api, drop) {
  await roomState(page, "waiting");
  assert.match(await page.locator(".eta").innerText(), /^Estimated wait: (less than a minute|about \d+ min|\d+–\d+ min)$/);
  await page.locator("#ago", { hasText: /^Updated \d+ s ago\.$/ }).waitFor();
  await page.locator("#screen").getByText("Keep this tab open; reloading is safe").waitFor();
  await check(page, "room-waiting");

  await api("POST", `/v1/admin/drops/${drop}/pause`);
  await roomState(page, "paused");
  const frozen = await page.locator(".eta").innerText();
  assert.match(frozen, /frozen while paused/);
  await page.waitForTimeout(1500); // positions keep coming; the screen and estimate stay
  assert.equal(await page.locator("#screen").getAttribute("data-state"), "paused");
  assert.equal(await page.locator(".eta").innerText(), frozen);
  await check(page, "room-paused");
  await api("POST", `/v1/admin/drops/${drop}/resume`);
  await roomState(page, "waiting");
  const place = await page.locator("#pos").innerText();
  await page.reload();
  await roomState(page, "waiting");
  assert.equal(await page.locator("#pos").innerText(), place, "a reload keeps the place");
}

async function admittedAndBuy(page, api, drop) {
  await api("PATCH", `/v1/admin/drops/${drop}`, { max_holders: 5 });
  await roomState(page, "admitted", 20000);
  assert.match(await page.locator("#countdown").innerText(), /^\d+:\d\d$/);
  assert.match(await page.locator(".buy .price").innerText(), /€\d/);
  assert.match(await page.title(), /^Your turn! \d+:\d\d — E2E Hoodie$/);
  assert.equal(await page.locator(".odds, .eta").count(), 0, "no stale waiting lines");
  await check(page, "room-admitted");

  // The access token dies while the buyer looks at the Buy card. The purchase goes over the
  // room socket, whose session was checked at the upgrade, so it needs no access token and
  // sends no HTTP request; the order read after it renews the session (refresh token).
  await page.evaluate(() => sessionStorage.setItem("vq_token", "expired.access.token"));
  const posts = [];
  page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/purchase")) posts.push(r.url()); });
  await page.getByRole("button", { name: "Buy now" }).click();
  await roomState(page, "reserved");
  await page.getByText(/^Order #\d+: 1 × E2E Hoodie/).waitFor();
  await page.locator("#pay-by", { hasText: /^Pay by \d\d:\d\d:\d\d: \d+:\d\d left\.$/ }).waitFor({ timeout: 15000 });
  const renewed = await page.evaluate(() => sessionStorage.getItem("vq_token"));
  assert.ok(renewed && renewed !== "expired.access.token", "session renewed");
  assert.deepEqual(posts, [], "bought on the socket, not over HTTP");
  await check(page, "room-reserved");
}

async function payAndCancel(page) {
  await page.getByRole("link", { name: "Pay for your order" }).click();
  await page.waitForURL("**/orders#order-*");
  const card = page.locator("li[data-order]").first();
  await card.locator(".status", { hasText: "Awaiting payment" }).waitFor({ timeout: 15000 });
  assert.match(await card.locator("h2").innerText(), /E2E Hoodie/);
  assert.match(await card.locator(".facts").innerText(), /€129\.00 · reserved/);
  assert.match(await card.locator(".deadline").innerText(), /^Pay by .*: \d+:\d\d left\.$/);
  await check(page, "orders-pending");
  await card.getByRole("button", { name: /^Pay / }).click();
  await card.locator(".note", { hasText: "Paid. Thank you!" }).waitFor();
  await card.locator(".status", { hasText: "Paid" }).waitFor();
  await check(page, "orders-paid");

  await card.getByRole("button", { name: "Cancel order…" }).click();
  const dialog = page.getByRole("dialog", { name: /^Cancel order #\d+\?$/ });
  await dialog.waitFor();
  assert.match(await dialog.innerText(), /full refund/);
  await check(page, "orders-confirm-cancel");
  await dialog.getByRole("button", { name: "Keep order" }).click();
  assert.equal(await card.locator(".status").innerText(), "Paid", "keeping changes nothing");
  await card.getByRole("button", { name: "Cancel order…" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Cancel order" }).click();
  await card.locator(".note", { hasText: "Order cancelled." }).waitFor();
  await card.locator(".status", { hasText: "Cancelled" }).waitFor();
  await check(page, "orders-cancelled");
}

for (const vp of VIEWPORTS) {
  test(`a new buyer signs up, waits, is paused, buys through a renewal, pays and cancels at ${vp.width}×${vp.height}`, async () => {
    const b = await browser();
    try {
      const api = await managerApi();
      const page = await newPage(b, vp);
      const drop = env(`DROP_WAIT_${vp.name.toUpperCase()}`);
      await signUp(page, drop, env(`SIGNUP_EMAIL_${vp.name.toUpperCase()}`));
      await waitAndPause(page, api, drop);
      await admittedAndBuy(page, api, drop);
      await payAndCancel(page);
    } finally {
      await b.close();
    }
  });
}
