// Sign-up in three steps: e-mail → code (POST /v1/auth/email-code) → profile and password
// (POST /v1/auth/signup, which checks the code), then a log-in so the session starts at once.
import { api, header, saveSession } from "/static/app.js";
header();
const $ = (x) => document.getElementById(x);
const next = new URLSearchParams(location.search).get("next");
const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
let email = "", code = "";

function step(n) {
  ["f-email", "f-code", "f-profile"].forEach((f, i) => { $(f).hidden = i !== n; });
  ["s1", "s2", "s3"].forEach((s, i) => {
    if (i === n) $(s).setAttribute("aria-current", "step"); else $(s).removeAttribute("aria-current");
  });
  $(["email", "code", "name"][n]).focus();
}

const say = (msg, err = "") => { $("msg").textContent = msg; $("error").textContent = err; };

/// A 422's field messages, named by their labels.
function explain(e) {
  if (e.code !== "validation_failed" || !e.data || !e.data.fields) return e.message;
  return Object.entries(e.data.fields).map(([k, v]) => `${k}: ${v}`).join("; ");
}

async function sendCode() {
  try {
    await api("POST", "/v1/auth/email-code", { email });
    say(`We sent a code to ${email}. It is valid for a few minutes.`);
    $("sent-to").textContent = `Sent to ${email}.`;
    return true;
  } catch (e) { say("", e.status === 429 ? "Too many codes asked for; wait a minute and try again." : explain(e)); return false; }
}

$("f-email").onsubmit = async (ev) => {
  ev.preventDefault();
  email = $("email").value.trim();
  if (await sendCode()) step(1);
};
$("resend").onclick = () => sendCode();
$("f-code").onsubmit = (ev) => {
  ev.preventDefault();
  code = $("code").value.trim();
  say("");
  step(2);
};
$("f-profile").onsubmit = async (ev) => {
  ev.preventDefault();
  const password = $("password").value;
  const body = { email, code, password, name: $("name").value, address: $("address").value, phone: $("phone").value };
  try {
    await api("POST", "/v1/auth/signup", body);
  } catch (e) {
    if (e.code === "invalid_code" || e.code === "code_expired") {
      step(1);
      return say("", e.code === "invalid_code" ? `That code is wrong (${e.data.tries_left} tries left).` : "The code expired: ask for a new one.");
    }
    return say("", explain(e));
  }
  try {
    saveSession(await api("POST", "/v1/auth/login", { email, password }));
    say("Account created. Taking you on…");
    location.href = target;
  } catch (e) { say("", `Account created, but logging in failed: ${e.message}`); }
};
