// The console's fairness report and what-if simulator (needs GET /v1/drops/{id}/fairness
// with `report` and POST /v1/admin/simulate): the report's numbers are shown, a simulation
// shows its results beside the form, and a 422 marks the bad field in place.
import { test } from "node:test";
import assert from "node:assert/strict";
import { env, browser, newPage, logIn, check, VIEWPORTS } from "./lib.mjs";

test("the console shows the fairness report and runs the simulator", async () => {
  const b = await browser();
  try {
    for (const vp of VIEWPORTS) {
      const page = await newPage(b, vp);
      await logIn(page, env("MANAGER_EMAIL"), "/console");
      await page.locator("#drop").selectOption(env("DROP_SOLDOUT"));
      // The drop shown first may have a report of its own (with the same heading), so wait
      // for a line only the sold-out drop's report has: reading at the heading raced the fetch.
      await page.getByRole("heading", { name: "How the drop went" }).waitFor({ timeout: 10000 });
      await page.locator("#fair-report", { hasText: "Tokens per unit" }).waitFor({ timeout: 10000 });
      const report = await page.locator("#fair-report").innerText();
      for (const label of ["Joiners", "FIFO order (Kendall tau)", "Tokens per unit", "Bought"]) assert.match(report, new RegExp(label.replace(/[()]/g, "\\$&")));
      await page.getByRole("button", { name: "Simulate" }).click();
      await page.locator("#sim-msg", { hasText: "Done." }).waitFor({ timeout: 20000 });
      assert.match(await page.locator("#sim-out").innerText(), /Wait, median/);
      await check(page, "console-fairness");
      // Past the server's bound (the input itself only asks for at least 1), so the 422 shows in place.
      await page.locator("#sim-buyers").fill("2000000");
      await page.getByRole("button", { name: "Simulate" }).click();
      await page.locator("#sim-msg", { hasText: /^Not simulated/ }).waitFor();
      await page.locator("#sim-buyers-err").waitFor();
      assert.equal(await page.locator("#sim-buyers").getAttribute("aria-invalid"), "true");
      await check(page, "console-simulator-error");
    }
  } finally {
    await b.close();
  }
});
