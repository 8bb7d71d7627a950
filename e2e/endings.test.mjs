// The room's endings that arrive over the socket, at 1280×800 and 390×844, each with a
// screenshot, axe and no sideways scroll: the same account opening the room in more tabs
// than its socket cap (`replaced`, then "Use this tab instead" takes the place back), the
// place given up from elsewhere (`left`), and the purchase window running out (`expired`);
// after the last two, "Join the queue again" does so.
import { test } from "node:test";
import assert from "node:assert/strict";
import { env, base, browser, newPage, logIn, check, roomState, VIEWPORTS } from "./lib.mjs";

const D = (k) => env(`DROP_${k}`);

/// Opens `n` more room sockets of this account from inside the page, as other tabs would
/// (a ticket each, then the upgrade), and waits until each is open.
async function otherTabs(page, drop, n) {
  await page.evaluate(async ([drop, n]) => {
    const m = await import("/static/app.js");
    window.otherTabs = [];
    for (let i = 0; i < n; i++) {
      const ticket = await m.roomTicket(drop);
      const pq = await m.powQuery(drop, () => {});
      const ws = new WebSocket(`ws://${location.host}/v1/drops/${drop}/room?ticket=${encodeURIComponent(ticket)}${pq}`);
      await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error("socket refused")); });
      window.otherTabs.push(ws);
    }
  }, [drop, n]);
}

async function replaced(page) {
  await page.goto(`${base}/drops/${D("TABS")}`);
  await roomState(page, "waiting");
  const place = await page.locator("#pos").innerText();
  // The cap is 3 sockets per account: the fourth closes the oldest, this page's.
  await otherTabs(page, D("TABS"), 3);
  await roomState(page, "replaced");
  await page.getByRole("heading", { name: "Open in another tab" }).waitFor();
  await check(page, "room-replaced");
  await page.getByRole("button", { name: "Use this tab instead" }).click();
  await roomState(page, "waiting");
  assert.equal(await page.locator("#pos").innerText(), place, "the same place after taking it back");
  const open = await page.evaluate(() => window.otherTabs.filter((ws) => ws.readyState === WebSocket.OPEN).length);
  assert.equal(open, 2, "taking the place back closed the oldest other tab");
}

async function left(page) {
  await page.goto(`${base}/drops/${D("LEAVE")}`);
  await roomState(page, "waiting");
  // Given up elsewhere (another device, the API): the socket hears it.
  await page.evaluate(async (drop) => {
    const m = await import("/static/app.js");
    await m.api("DELETE", `/v1/drops/${drop}/queue`);
  }, D("LEAVE"));
  await roomState(page, "left");
  await page.getByRole("heading", { name: "You left the queue" }).waitFor();
  await check(page, "room-left");
  // The button does what it says: a new place, at the back.
  await page.getByRole("button", { name: "Join the queue again" }).click();
  await roomState(page, "waiting");
}

async function expired(page) {
  await page.goto(`${base}/drops/${D("EXPIRE")}`);
  await roomState(page, "admitted");
  await page.getByRole("button", { name: "Buy now" }).waitFor();
  // A 5 s window, not used: the admission controller takes the unit back and says so.
  await roomState(page, "expired", 20000);
  await page.getByRole("heading", { name: "Your purchase window expired" }).waitFor();
  assert.equal(await page.getByRole("button", { name: "Buy now" }).count(), 0, "no Buy button after expiry");
  await check(page, "room-expired");
  await page.getByRole("button", { name: "Join the queue again" }).click();
  await roomState(page, "admitted");
}

for (const vp of VIEWPORTS) {
  test(`the room's endings over the socket at ${vp.width}×${vp.height}`, async () => {
    const b = await browser();
    try {
      const page = await newPage(b, vp);
      await logIn(page, env(vp.name === "phone" ? "BUYER_PHONE" : "BUYER_DESKTOP"), `/drops/${D("TABS")}`);
      await replaced(page);
      await left(page);
      await expired(page);
    } finally {
      await b.close();
    }
  });
}
