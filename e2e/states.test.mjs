// Every screen of the waiting room, the drop list and the order page, at 1280×800 and
// 390×844: each with a screenshot, axe (0 violations) and no sideways scroll. Also a socket
// cut mid-wait (the "reconnecting" banner, then the same place), terminal states that make
// no further socket attempts, and a session renewed before its access token expires.
import { test } from "node:test";
import assert from "node:assert/strict";
import { env, base, browser, newPage, logIn, check, roomState, until, VIEWPORTS } from "./lib.mjs";

const D = (k) => env(`DROP_${k}`);

/// Counts the room sockets the page opens.
function countSockets(page) {
  const n = { sockets: 0 };
  page.on("websocket", () => { n.sockets += 1; });
  return n;
}

async function terminal(page, drop, state, name, text) {
  const n = countSockets(page);
  await page.goto(`${base}/drops/${drop}`);
  await roomState(page, state);
  await page.getByRole("heading", { name: text }).waitFor();
  await check(page, name);
  await page.waitForTimeout(1200);
  assert.equal(n.sockets, 0, `${name}: no socket for a terminal state`);
  assert.equal(await page.locator("#banner").isVisible(), false);
}

async function timed(page) {
  await page.goto(`${base}/drops/${D("SCHEDULED")}`);
  await roomState(page, "scheduled");
  assert.match(await page.locator("#cd-open").innerText(), /^[12] h \d\d min$/);
  await check(page, "room-scheduled");
  await page.goto(`${base}/drops/${D("PREQUEUE")}`);
  await roomState(page, "prequeue");
  await page.locator("#screen").getByText("Your place is drawn at the start").waitFor();
  assert.match(await page.locator("#cd-start").innerText(), /^(\d+:\d\d|1 h 00 min)$/);
  await check(page, "room-prequeue");
}

/// A socket cut by the network (not by the server's choice): the banner shows, the page
/// reconnects by itself after a jittered pause, and the place is the same.
async function reconnect(page) {
  let cut = null;
  await page.routeWebSocket(/\/room\?/, (ws) => {
    const server = ws.connectToServer();
    cut = () => { ws.close({ code: 1011, reason: "network test" }); server.close(); };
  });
  await page.goto(`${base}/drops/${D("HELD")}`);
  await roomState(page, "waiting");
  await check(page, "room-waiting");
  const place = await page.locator("#pos").innerText();
  cut();
  await page.locator("#banner").waitFor({ state: "visible" });
  assert.match(await page.locator("#banner").innerText(), /Reconnecting… your place is kept/);
  await check(page, "room-reconnecting");
  await page.locator("#banner").waitFor({ state: "hidden", timeout: 10000 });
  assert.equal(await page.locator("#pos").innerText(), place);
  await page.unrouteAll();
}

async function liveStates(page) {
  await page.goto(`${base}/drops/${D("PAUSED")}`);
  await roomState(page, "paused");
  await check(page, "room-paused");
  // The purchase goes over the room socket and is made, but its answer is lost on the way:
  // after 5 s the page asks again over HTTP, which replays the same order (the purchase
  // token is the idempotency key), not a second one.
  let lost = null;
  await page.routeWebSocket(/\/room\?/, (ws) => {
    const server = ws.connectToServer();
    server.onMessage((m) => {
      if (JSON.parse(m).type === "purchased") lost = JSON.parse(m);
      else ws.send(m);
    });
  });
  const posts = [];
  page.on("request", (r) => { if (r.method() === "POST" && r.url().endsWith("/purchase")) posts.push(r.url()); });
  await page.goto(`${base}/drops/${D("LIVE")}`);
  await roomState(page, "admitted");
  await page.getByRole("button", { name: "Buy now" }).waitFor();
  await check(page, "room-admitted");
  await page.getByLabel("Quantity").fill("2");
  await page.getByRole("button", { name: "Buy now" }).click();
  await roomState(page, "reserved");
  const order = page.getByText(/^Order #\d+: 2 × E2E Sneaker, €258\.00\.$/);
  await order.waitFor();
  assert.ok(lost, "the socket purchase was made");
  assert.equal(posts.length, 1, "then asked again over HTTP");
  assert.match(await order.innerText(), new RegExp(`^Order #${lost.order_id}:`), "the same order replayed");
  await check(page, "room-reserved");
}

async function lists(page) {
  await page.goto(`${base}/`);
  const ended = page.locator(`li[data-drop="${D("ENDED")}"]`);
  await ended.waitFor();
  assert.match(await ended.getAttribute("class"), /\bover\b/);
  assert.match(await page.locator(`li[data-drop="${D("SOLDOUT")}"]`).innerText(), /Sold out/);
  assert.match(await page.locator(`li[data-drop="${D("SCHEDULED")}"] .when`).innerText(), /^Waiting room opens in \d h \d\d min/);
  assert.match(await page.locator(`li[data-drop="${D("LIVE")}"] .price`).innerText(), /^€129\.00$/);
  assert.equal(await page.getByRole("link", { name: "Console", exact: true }).count(), 0, "no console link for shoppers");
  await check(page, "drops");
  await page.goto(`${base}/orders`);
  await page.locator("li[data-order]").first().waitFor({ timeout: 15000 });
  await check(page, "orders");
}

/// A join that pays 16 bits of proof of work: the challenge says so, the page shows its
/// progress note while its worker solves, and the server lets the solved join in.
async function hardWork(page) {
  // Every text the note shows, from the first paint on (the solve may take a moment only).
  await page.addInitScript(() => {
    window.notes = [];
    document.addEventListener("DOMContentLoaded", () => {
      const note = document.getElementById("note");
      if (!note) return;
      new MutationObserver(() => window.notes.push(note.textContent))
        .observe(note, { childList: true, characterData: true, subtree: true });
    });
  });
  await page.goto(`${base}/drops/${D("POW")}`);
  await roomState(page, "waiting");
  const notes = await page.evaluate(() => window.notes);
  assert.ok(notes.some((n) => /^Checking you are not a bot… \d+%$/.test(n)), `progress note shown: ${JSON.stringify(notes)}`);
  const c = await page.evaluate(async (drop) => (await import("/static/app.js")).api("GET", `/v1/drops/${drop}/challenge`), D("POW"));
  assert.ok(c.difficulty >= 16, `the difficulty in force: ${c.difficulty}`);
  await check(page, "room-pow");
}

for (const vp of VIEWPORTS) {
  test(`every room state, the drop list and the orders at ${vp.width}×${vp.height}`, async () => {
    const b = await browser();
    try {
      const page = await newPage(b, vp);
      await page.goto(`${base}/signup`);
      await check(page, "signup");
      await page.goto(`${base}/login`);
      await check(page, "login");
      // The API reference renders the generated document: every schema listed, no error.
      await page.goto(`${base}/docs`);
      await page.locator("#schemas h3").first().waitFor();
      assert.ok((await page.locator("#ops article").count()) > 40, "every operation rendered");
      assert.equal(await page.locator("#error").innerText(), "");
      await check(page, "docs");
      await logIn(page, env(vp.name === "phone" ? "BUYER_PHONE" : "BUYER_DESKTOP"), `/drops/${D("SOLDOUT")}`);
      await roomState(page, "soldout");
      await check(page, "room-soldout");
      await terminal(page, D("ENDED"), "ended", "room-ended", "This drop has ended");
      await terminal(page, D("BOUGHT"), "bought", "room-bought", "You already bought this drop");
      await terminal(page, "999999", "notfound", "room-notfound", "Drop not found");
      await timed(page);
      await reconnect(page);
      await liveStates(page);
      await hardWork(page);
      await lists(page);
      if (vp.name === "desktop") {
        // Renewal before expiry: with the expiry a second away, a fresh page renews on its own.
        const before = await page.evaluate(() => { sessionStorage.setItem("vq_exp", String(Date.now() + 1500)); return sessionStorage.getItem("vq_token"); });
        await page.reload();
        await until(page, `sessionStorage.getItem("vq_token") !== ${JSON.stringify(before)}`, 5000, "a renewal before expiry");
      }
    } finally {
      await b.close();
    }
  });
}
