//! No import circles: between the workspace's crates (dev-dependencies included), and
//! between the modules of each crate, read from the `crate::`, `super::` and `self::`
//! paths in `src/**/*.rs` (see docs/layout.md, section "Import rules").
//!
//! The rule: a module and everything below it is one node as seen from its siblings. A
//! path from `a::x::…` to `a::y::…` is an edge `x → y` among the children of `a`, at
//! every level; a path between a module and its own ancestor or descendant (`super::` up
//! to the parent, a parent using its child) is no edge. A cycle is a strongly connected
//! set of two or more siblings. Re-exports are not followed: a path is charged to the
//! longest prefix of it that is a module file.

mod scan;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The cycles known today, each waiting for the change named beside it. The check fails
/// on any cycle not listed here, and on an entry that no longer matches a cycle (remove
/// it once its cycle is gone). Written `crate: parent::{siblings}` as the failure prints.
const KNOWN: &[(&str, &str)] = &[
    (
        "vq-api: {drops, pow, products, room}",
        "the room split: drops/public.rs calls room::leave and pow::verify, room.rs and \
         pow.rs call drops::join_or_peek; and products.rs reads drops' views and store while \
         drops/admin.rs calls products::load. Broken by one waiting-room module (join, peek, \
         leave, proof of work, the socket session) and by products reading drops through a \
         view drops hands out",
    ),
    (
        "vq-api: drops::{mirror, store}",
        "store.rs writes the Redis mirror on every change, mirror.rs reads store's DropRow. \
         Broken by the one owner of a drop's live state (the drop's fields declared once)",
    ),
    (
        "vq-api: {accounts, extract, limits}",
        "extract.rs asks accounts::sessions::is_revoked, limits/gate.rs calls \
         extract::token_revoked, accounts' handlers use both extractors. Broken by moving the \
         revocation check into a module of its own that imports neither",
    ),
    (
        "vq-core: {ratelimit, scripts}",
        "ratelimit.rs runs scripts via scripts::evalsha/run_script, scripts/purchase.rs takes \
         ratelimit's GateArgs/GateVerdict. Broken by moving the script runner (evalsha, \
         run_script) into a module below both",
    ),
    (
        "vq-orders: {payment, simulator}",
        "payment.rs re-exports simulator::SimulatedProvider (app/src/roles.rs and api/src/lib.rs \
         name it vq_orders::payment::SimulatedProvider), simulator.rs implements payment's \
         PaymentProvider. Broken by naming it vq_orders::simulator::SimulatedProvider there \
         and dropping the re-export",
    ),
    (
        "crates: {vitaqueue, vq-api}",
        "vq-api dev-depends on vitaqueue (the whole-system tests use App::build) and \
         vitaqueue depends on vq-api. Broken by moving api/tests into a crate of their own",
    ),
];

fn workspace() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    dir.ancestors().nth(2).unwrap().to_path_buf()
}

/// `(package name, directory)` of every workspace member.
fn members() -> Vec<(String, PathBuf)> {
    let root = workspace();
    let text = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
    let list = text.split("members").nth(1).expect("workspace members");
    let list = &list[list.find('[').unwrap() + 1..list.find(']').unwrap()];
    list.split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .map(|m| {
            let dir = root.join(m);
            let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
            (toml_value(&manifest, "name").expect("package name"), dir)
        })
        .collect()
}

fn toml_value(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"').to_string())
    })
}

/// Member → the members it depends on in any table (normal, dev, build).
fn crate_graph(members: &[(String, PathBuf)]) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    let mut g = BTreeMap::new();
    for (name, dir) in members {
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let mut deps = BTreeSet::new();
        let mut in_deps = false;
        for line in manifest.lines().map(str::trim) {
            if line.starts_with('[') {
                in_deps = line.ends_with("dependencies]");
                continue;
            }
            let dep = line.split(['.', '=', ' ']).next().unwrap_or("");
            if in_deps && names.contains(dep) && dep != name {
                deps.insert(dep.to_string());
            }
        }
        g.insert(name.clone(), deps);
    }
    g
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// An edge among siblings, with where it was seen.
type Edges = BTreeMap<(String, String), Vec<String>>;

/// Parent module (`a::b`, `` for the root) → its children's edges.
fn module_graphs(src: &Path) -> BTreeMap<String, Edges> {
    let mut files = Vec::new();
    rs_files(src, &mut files);
    files.sort();
    let mut modules = BTreeSet::new();
    let mut refs = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src).unwrap();
        if rel == Path::new("main.rs") || rel.starts_with("bin") {
            continue; // a binary is a crate of its own, using the library by name
        }
        let m = scan::module_of(rel);
        let code = scan::blank(&std::fs::read_to_string(file).unwrap());
        for r in scan::references(&code, &m) {
            refs.push((rel.display().to_string(), r));
        }
        modules.insert(m);
    }
    let mut graphs: BTreeMap<String, Edges> = BTreeMap::new();
    for (file, r) in refs {
        let to = (0..=r.to.len())
            .rev()
            .map(|n| &r.to[..n])
            .find(|p| modules.contains(*p))
            .unwrap_or(&[]);
        let common = r.from.iter().zip(to).take_while(|(a, b)| a == b).count();
        if common == r.from.len() || common == to.len() {
            continue; // an ancestor or descendant: no edge
        }
        let parent = r.from[..common].join("::");
        let edge = (r.from[common].clone(), to[common].clone());
        let seen = format!("{file}:{} names {}", r.line, r.to.join("::"));
        graphs
            .entry(parent)
            .or_default()
            .entry(edge)
            .or_default()
            .push(seen);
    }
    graphs
}

/// The strongly connected sets of two or more nodes.
fn cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<BTreeSet<String>> {
    let reach = |from: &str| {
        let mut seen = BTreeSet::new();
        let mut todo = vec![from.to_string()];
        while let Some(n) = todo.pop() {
            for m in edges.get(&n).into_iter().flatten() {
                if seen.insert(m.clone()) {
                    todo.push(m.clone());
                }
            }
        }
        seen
    };
    let reaches: BTreeMap<&String, BTreeSet<String>> =
        edges.keys().map(|n| (n, reach(n))).collect();
    let mut out: Vec<BTreeSet<String>> = Vec::new();
    for (n, r) in &reaches {
        let scc: BTreeSet<String> = r
            .iter()
            .filter(|m| reaches.get(m).is_some_and(|back| back.contains(*n)))
            .cloned()
            .chain([(*n).clone()])
            .collect();
        if scc.len() > 1 && !out.contains(&scc) {
            out.push(scc);
        }
    }
    out
}

fn name(scope: &str, parent: &str, set: &BTreeSet<String>) -> String {
    let list = set.iter().cloned().collect::<Vec<_>>().join(", ");
    match parent {
        "" => format!("{scope}: {{{list}}}"),
        p => format!("{scope}: {p}::{{{list}}}"),
    }
}

/// Every cycle of the workspace, named as in `KNOWN`, with the edges that make it.
fn all_cycles() -> BTreeMap<String, Vec<String>> {
    let members = members();
    let mut found = BTreeMap::new();
    let crates = crate_graph(&members);
    for set in cycles(&crates) {
        let why = set
            .iter()
            .flat_map(|a| {
                crates[a]
                    .iter()
                    .filter(|b| set.contains(*b))
                    .map(move |b| (a, b))
            })
            .map(|(a, b)| format!("{a} depends on {b} (see {a}'s Cargo.toml)"))
            .collect();
        found.insert(name("crates", "", &set), why);
    }
    for (krate, dir) in &members {
        for (parent, edges) in module_graphs(&dir.join("src")) {
            let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for (a, b) in edges.keys() {
                g.entry(a.clone()).or_default().insert(b.clone());
            }
            for set in cycles(&g) {
                let why = edges
                    .iter()
                    .filter(|((a, b), _)| set.contains(a) && set.contains(b))
                    .map(|((a, b), seen)| format!("{a} → {b}: {}", seen.join("; ")))
                    .collect();
                found.insert(name(krate, &parent, &set), why);
            }
        }
    }
    found
}

/// What is wrong with the workspace's imports: every cycle not in `KNOWN` with the edges
/// that make it, and every entry of `KNOWN` that no longer matches a cycle. Empty: all is
/// well.
pub fn import_cycle_report() -> String {
    let found = all_cycles();
    let known: BTreeSet<&str> = KNOWN.iter().map(|(k, _)| *k).collect();
    let mut report = String::new();
    for (cycle, edges) in &found {
        if !known.contains(cycle.as_str()) {
            report += &format!("\nnew import cycle {cycle}\n  {}\n", edges.join("\n  "));
        }
    }
    for k in known.iter().filter(|k| !found.contains_key(**k)) {
        report += &format!(
            "\nthe known cycle `{k}` is gone (or changed): remove or update its entry in \
             KNOWN (tools/layout/src/lib.rs)\n"
        );
    }
    if !report.is_empty() {
        report += &format!(
            "\nbreak the cycle (see docs/layout.md, section \"Import rules\"); found: {:?}",
            found.keys().collect::<Vec<_>>()
        );
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run by `cargo test -p vq-layout` (and by `scripts/test.sh` before the long suite).
    #[test]
    fn no_import_cycle_beyond_the_known_ones() {
        let report = import_cycle_report();
        assert!(report.is_empty(), "{report}");
    }

    #[test]
    fn the_scan_sees_paths_use_trees_and_super() {
        let code = scan::blank(
            "use crate::a::{b::C, d::{self, E}};\n// crate::zz::Y\nfn f() { super::x::g(); \
             let s = \"crate::q\"; }\nmod tests { use super::*; }\n",
        );
        let refs = scan::references(&code, &["m".into(), "n".into()]);
        let got: Vec<String> = refs.iter().map(|r| r.to.join("::")).collect();
        assert_eq!(got, ["a::b::C", "a::d", "a::d::E", "m::x::g", "m::n"]);
        assert_eq!(refs[3].line, 3);
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
        g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
        assert!(cycles(&g).is_empty());
        g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
        assert_eq!(cycles(&g).len(), 1);
    }
}
