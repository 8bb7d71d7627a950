// Renders /openapi.json: operations grouped by tag (method, path, security, parameters,
// request body, responses) and every schema, with links between them. Plain DOM (no
// innerHTML), so the page runs under the strict CSP with no inline script.

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

const refName = (ref) => ref.split("/").pop();
const slug = (s) => s.replace(/[^A-Za-z0-9_-]+/g, "-");

// A one-line type: a link for a $ref, `array of X`, `A | B`, or the JSON type(s).
function typeOf(s) {
  if (!s) return el("span", {}, "any");
  if (s.$ref) return el("a", { href: `#schema-${slug(refName(s.$ref))}` }, refName(s.$ref));
  const span = el("span");
  const many = s.oneOf || s.anyOf;
  if (many) {
    many.forEach((x, i) => span.append(i ? " | " : "", typeOf(x)));
    return span;
  }
  if (s.allOf) {
    s.allOf.forEach((x, i) => span.append(i ? " & " : "", typeOf(x)));
    return span;
  }
  const types = [].concat(s.type || (s.properties ? "object" : "any"));
  types.forEach((t, i) => {
    span.append(i ? " | " : "");
    if (t === "array") span.append("array of ", typeOf(s.items));
    else span.append(s.format ? `${t} (${s.format})` : t);
  });
  if (s.enum) span.append(`: ${s.enum.map((v) => JSON.stringify(v)).join(", ")}`);
  return span;
}

function limits(s) {
  const out = [];
  if (s.minimum !== undefined) out.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) out.push(`≤ ${s.maximum}`);
  if (s.default !== undefined) out.push(`default ${JSON.stringify(s.default)}`);
  if (s.pattern) out.push(`matches ${s.pattern}`);
  return out.join(", ");
}

// The properties of an object schema (following allOf parts) as a table.
function propsTable(s, spec) {
  const rows = [];
  const collect = (x) => {
    if (!x) return;
    if (x.$ref) return collect(spec.components.schemas[refName(x.$ref)]);
    (x.allOf || []).forEach(collect);
    const required = new Set(x.required || []);
    for (const [name, p] of Object.entries(x.properties || {})) rows.push([name, p, required.has(name)]);
  };
  collect(s);
  if (!rows.length) return null;
  const table = el("table", { tabindex: "0" }, el("tr", {}, el("th", { scope: "col" }, "Field"),
    el("th", { scope: "col" }, "Type"), el("th", { scope: "col" }, "About")));
  for (const [name, p, req] of rows) {
    const about = [p.description, limits(p)].filter(Boolean).join(" · ");
    table.append(el("tr", {},
      el("td", {}, el("code", {}, name), req ? el("span", { class: "req", title: "required" }, " *") : null),
      el("td", {}, typeOf(p)), el("td", { class: "desc" }, about)));
  }
  return table;
}

function schemaBlock(s, spec) {
  const div = el("div");
  div.append(el("p", {}, "Type: ", typeOf(s)));
  if (!s.$ref) {
    const t = propsTable(s, spec);
    if (t) div.append(t);
  }
  return div;
}

function paramsTable(params) {
  const table = el("table", { tabindex: "0" }, el("tr", {}, el("th", { scope: "col" }, "Name"),
    el("th", { scope: "col" }, "In"), el("th", { scope: "col" }, "Type"), el("th", { scope: "col" }, "About")));
  for (const p of params) {
    table.append(el("tr", {},
      el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req", title: "required" }, " *") : null),
      el("td", {}, p.in), el("td", {}, typeOf(p.schema)),
      el("td", { class: "desc" }, [p.description, limits(p.schema || {})].filter(Boolean).join(" · "))));
  }
  return table;
}

function responsesTable(responses) {
  const table = el("table", { tabindex: "0" }, el("tr", {}, el("th", { scope: "col" }, "Status"),
    el("th", { scope: "col" }, "Body"), el("th", { scope: "col" }, "Meaning")));
  for (const [status, r] of Object.entries(responses)) {
    const content = r.content || {};
    const [type] = Object.keys(content);
    const body = type ? el("span", {}, typeOf(content[type].schema), type === "application/json" ? "" : ` (${type})`) : "—";
    table.append(el("tr", {}, el("td", {}, el("code", {}, status)), el("td", {}, body),
      el("td", { class: "desc" }, r.description || "")));
  }
  return table;
}

function security(op) {
  const reqs = op.security || [];
  if (!reqs.length) return null;
  const parts = reqs.map((r) => {
    const [[name, roles] = []] = Object.entries(r);
    if (!name) return "or anonymous";
    return roles.length ? `${name} token (${roles.join(", ")})` : `${name} token`;
  });
  return el("p", { class: "lock" }, `🔒 Needs a ${parts.join(" ")}`);
}

function operation(method, path, op, spec) {
  const id = `op-${slug(op.operationId || method + path)}`;
  const card = el("article", { class: "op", id, "aria-labelledby": `${id}-h` });
  card.append(el("h3", { id: `${id}-h` }, el("span", { class: `method ${method}` }, method),
    el("span", { class: "path" }, path)));
  if (op.summary) card.append(el("p", {}, op.summary));
  if (op.description) card.append(el("p", { class: "desc muted" }, op.description));
  const lock = security(op);
  if (lock) card.append(lock);
  if (op.parameters && op.parameters.length) card.append(el("h4", {}, "Parameters"), paramsTable(op.parameters));
  const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
  if (body) {
    card.append(el("h4", {}, "Request body", op.requestBody.required ? "" : " (optional)"));
    if (op.requestBody.description) card.append(el("p", { class: "desc" }, op.requestBody.description));
    card.append(schemaBlock(body.schema, spec));
  }
  card.append(el("h4", {}, "Responses"), responsesTable(op.responses || {}));
  return card;
}

function render(spec) {
  document.getElementById("title").textContent = `${spec.info.title} ${spec.info.version}`;
  document.getElementById("intro").textContent = spec.info.description || "";
  const byTag = new Map((spec.tags || []).map((t) => [t.name, { about: t.description, ops: [] }]));
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const m of METHODS) {
      if (!item[m]) continue;
      const tag = (item[m].tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, { ops: [] });
      byTag.get(tag).ops.push([m, path, item[m]]);
    }
  }
  const toc = document.getElementById("toc");
  const ops = document.getElementById("ops");
  for (const [tag, { about, ops: list }] of byTag) {
    if (!list.length) continue;
    const id = `tag-${slug(tag)}`;
    toc.append(el("li", {}, el("a", { href: `#${id}` }, `${tag} (${list.length})`)));
    const section = el("section", { "aria-labelledby": id }, el("h2", { id }, tag));
    if (about) section.append(el("p", { class: "muted" }, about));
    for (const [m, path, op] of list) section.append(operation(m, path, op, spec));
    ops.append(section);
  }
  toc.append(el("li", {}, el("a", { href: "#schemas-h" }, "Schemas")));
  const schemas = document.getElementById("schemas");
  for (const [name, s] of Object.entries(spec.components.schemas || {})) {
    const id = `schema-${slug(name)}`;
    const block = el("article", { class: "op", id, "aria-labelledby": `${id}-h` }, el("h3", { id: `${id}-h` }, name));
    if (s.description) block.append(el("p", { class: "desc" }, s.description));
    block.append(schemaBlock(s, spec));
    schemas.append(block);
  }
}

try {
  const res = await fetch("/openapi.json");
  if (!res.ok) throw new Error(`openapi.json answered ${res.status}`);
  render(await res.json());
} catch (e) {
  document.getElementById("error").textContent = `Could not load the API document: ${e.message}`;
}
