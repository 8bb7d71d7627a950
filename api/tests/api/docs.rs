//! The docs against the code: every setting has a row in docs/configuration.md and no
//! row there names a setting that does not exist; every route (API operations, the room
//! socket, pages and static files) and every WebSocket message type has an entry in
//! docs/api.md; the front pages stay short; every local link in README.md, BENCHMARKS.md,
//! docs/ and benchmarks/ leads to a file; and every citation in the code of a page's
//! section (`docs/PAGE.md, section "NAME"`) names a heading that exists. The failures say
//! what to add where, for whoever adds a setting or a route.

mod settings_keys;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .into()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

#[test]
fn every_setting_has_an_entry_in_the_configuration_page() {
    let page = read("docs/configuration.md");
    let keys = settings_keys::all();
    assert!(keys.len() > 80, "the walk found only {keys:?}");
    for k in [
        "http.port",
        "limits.login_ip.burst",
        "redis.sentinels",
        "log_json",
    ] {
        assert!(keys.contains(k), "{k} not found in {keys:?}");
    }
    let mut wrong: Vec<String> = keys
        .iter()
        .filter(|k| !page.contains(&format!("`{}`", settings_keys::env_var(k))))
        .map(|k| {
            let (section, key) = k.split_once('.').unwrap_or(("Top-level keys", k));
            format!(
                "  no entry for setting `{k}`: add the row\n    | `{key}` | `{}` | <default> | <meaning> |\n  \
                 to the table of section `## {section}` (make the section if there is none)",
                settings_keys::env_var(k)
            )
        })
        .collect();
    let known: BTreeSet<String> = keys.iter().map(|k| settings_keys::env_var(k)).collect();
    wrong.extend(
        env_vars_named(&page)
            .into_iter()
            .filter(|v| !known.contains(v))
            .map(|v| format!("  `{v}` is no setting the code reads: remove or rename its row")),
    );
    assert!(
        wrong.is_empty(),
        "docs/configuration.md is out of step with vq_core::Settings:\n{}",
        wrong.join("\n")
    );
}

/// Every `VQ_SECTION__KEY` in `text` (placeholders such as `VQ_LIMITS__<NAME>__BURST`
/// and the non-setting variables without `__`, like `VQ_MANAGER_PASSWORD`, left out).
fn env_vars_named(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("VQ_") {
        let tail = &rest[i..];
        let len = tail
            .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..len];
        if name.contains("__") && !name.ends_with('_') {
            out.insert(name.to_string());
        }
        rest = &tail[len.max(3)..];
    }
    out
}

#[test]
fn every_route_has_an_entry_in_the_api_page() {
    let page = read("docs/api.md");
    let mut routes = crate::openapi::source_routes();
    assert!(routes.len() >= 40, "the scan found only {routes:?}");
    for f in vq_api::web::FILES {
        routes.insert(("get".into(), f.route.to_string()));
    }
    let missing: Vec<String> = routes
        .iter()
        .map(|(m, p)| format!("`{} {p}`", m.to_uppercase()))
        .filter(|entry| !page.contains(entry.as_str()))
        .map(|entry| {
            format!(
                "  route {entry}: add the row\n    | {entry} | <who> | <what> |\n  to the table \
                 of its domain's section (\"Drops (manager)\", \"Orders\", ...; a new domain gets \
                 its own section)"
            )
        })
        .chain(websocket_types().into_iter().filter_map(|(enum_name, ty)| {
            let entry = format!("{{\"type\":\"{ty}\"");
            (!page.contains(&entry)).then(|| {
                format!(
                    "  WebSocket message {enum_name}::{ty}: add `{entry},...}}` with its fields to \
                     section \"WebSocket\""
                )
            })
        }))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/api.md has no entry for:\n{}",
        missing.join("\n")
    );
}

/// `(enum, wire type)` of every variant of the room socket's message enums (`ServerMsg`,
/// `ClientMsg`, tagged `type` in snake_case), wherever under api/src they are declared.
fn websocket_types() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for name in ["ServerMsg", "ClientMsg"] {
        let decl = format!("enum {name} {{");
        let text = api_sources()
            .into_iter()
            .find(|t| t.contains(&decl))
            .unwrap_or_else(|| panic!("no `{decl}` under api/src: teach docs.rs where it went"));
        let body = &text[text.find(&decl).unwrap() + decl.len()..];
        let body = &body[..body.find("\n}").unwrap()];
        for line in body.lines() {
            let Some(rest) = line.strip_prefix("    ") else {
                continue;
            };
            if rest.starts_with(|c: char| c.is_ascii_uppercase()) {
                let variant: String = rest.chars().take_while(|c| c.is_alphanumeric()).collect();
                out.push((name.to_string(), snake(&variant)));
            }
        }
    }
    assert!(out.len() >= 15, "the scan found only {out:?}");
    out
}

fn snake(camel: &str) -> String {
    let mut s = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

fn api_sources() -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(std::fs::read_to_string(p).unwrap());
            }
        }
    }
    let mut out = Vec::new();
    walk(&root().join("api/src"), &mut out);
    out
}

#[test]
fn the_front_pages_stay_short() {
    for (page, max_kb) in [("README.md", 12), ("BENCHMARKS.md", 20)] {
        let len = read(page).len();
        assert!(
            len <= max_kb * 1024,
            "{page} is {len} bytes, over {max_kb} KB: move detail to a docs/ page (README) or \
             dated run notes under benchmarks/ (BENCHMARKS), and link it"
        );
    }
}

#[test]
fn local_links_in_the_docs_lead_to_files() {
    let mut pages = vec![PathBuf::from("README.md"), PathBuf::from("BENCHMARKS.md")];
    for dir in ["docs", "benchmarks"] {
        for e in std::fs::read_dir(root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "md") {
                pages.push(p.strip_prefix(root()).unwrap().to_path_buf());
            }
        }
    }
    let mut broken = Vec::new();
    for page in &pages {
        let text = read(&page.to_string_lossy());
        for target in text.split("](").skip(1).filter_map(|s| s.split(')').next()) {
            let file = target.split('#').next().unwrap_or("");
            if file.is_empty() || file.contains("://") || file.starts_with("mailto:") {
                continue;
            }
            let at = page.parent().unwrap_or(Path::new("")).join(file);
            if !root().join(&at).exists() {
                broken.push(format!("{}: ({target})", page.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to missing files: {broken:#?}");
}

/// Every `PAGE.md, section "NAME"` (or `sections "A" and "B"`) written in the code's
/// comments, with comment continuation lines joined, so a citation may wrap.
fn citations(text: &str) -> Vec<(String, String)> {
    let mut joined = String::new();
    for line in text.lines() {
        let t = line.trim_start();
        let body = ["//!", "///", "//", "--", "#"]
            .iter()
            .find_map(|m| t.strip_prefix(m))
            .unwrap_or(t);
        joined.push(' ');
        joined.push_str(body.trim());
    }
    let mut out = Vec::new();
    let mut rest = joined.as_str();
    while let Some(i) = rest.find(".md, section") {
        let page_start = rest[..i].rfind([' ', '(', '`']).map_or(0, |p| p + 1);
        let page = format!("{}.md", &rest[page_start..i]);
        let mut tail = &rest[i + ".md, section".len()..];
        tail = tail.strip_prefix('s').unwrap_or(tail);
        while let Some(q) = tail.trim_start().strip_prefix('"') {
            let Some((name, after)) = q.split_once('"') else {
                break;
            };
            out.push((page.clone(), name.to_string()));
            tail = after.trim_start().strip_prefix("and").unwrap_or(after);
        }
        rest = &rest[i + 1..];
    }
    out
}

/// And no comment cites an issue number or a BENCHMARKS section number instead.
#[test]
fn every_cited_section_exists() {
    let mut files = Vec::new();
    for dir in [
        "api",
        "app",
        "core",
        "orders",
        "admission",
        "worker",
        "loadtest",
        "lua",
        "scripts",
    ] {
        let mut stack = vec![root().join(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
                if p.is_dir() && !p.ends_with("node_modules") {
                    stack.push(p);
                } else if ["rs", "sh", "lua", "js"].contains(&ext) && !p.ends_with("api/docs.rs") {
                    files.push(p);
                }
            }
        }
    }
    let mut seen = 0;
    let mut broken = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let lower = text.to_lowercase().replace("benchmarks.md", "benchmarks");
        for bad in ["issue ", "benchmarks §"] {
            let by_number = lower
                .match_indices(bad)
                .any(|(i, _)| lower[i + bad.len()..].starts_with(|c: char| c.is_ascii_digit()));
            if by_number {
                broken.push(format!(
                    "{}: cites `{bad}N`: cite a page and section",
                    f.display()
                ));
            }
        }
        for (page, name) in citations(&text) {
            seen += 1;
            let headings = std::fs::read_to_string(root().join(&page)).unwrap_or_default();
            let found = headings
                .lines()
                .filter_map(|l| l.strip_prefix('#'))
                .any(|h| h.trim_start_matches('#').trim().starts_with(&name));
            if !found {
                broken.push(format!("{}: {page}, section \"{name}\"", f.display()));
            }
        }
    }
    assert!(seen >= 10, "found only {seen} citations");
    assert!(
        broken.is_empty(),
        "citations of sections that do not exist: {broken:#?}"
    );
}
