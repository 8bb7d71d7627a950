// Log-in page: stores the token pair (renewed by app.js) and goes back where the buyer was.
import { api, header, saveSession } from "/static/app.js";
header();
const next = new URLSearchParams(location.search).get("next");
const target = next && next.startsWith("/") && !next.startsWith("//") ? next : "/";
document.getElementById("to-signup").href = "/signup?next=" + encodeURIComponent(target);
document.getElementById("login").onsubmit = async (ev) => {
  ev.preventDefault();
  const f = ev.target, error = document.getElementById("error");
  error.textContent = "";
  try {
    saveSession(await api("POST", "/v1/auth/login", { email: f.email.value, password: f.password.value }));
    location.href = target;
  } catch (e) { error.textContent = e.status === 401 ? "Wrong e-mail or password." : e.message; }
};
