//! Reading a crate's sources for the module paths they name: comments and literals are
//! blanked out, then every `crate::…`, `super::…` and `self::…` path (use trees included)
//! is resolved against the module it is written in.

use std::path::Path;

/// One path a file names, resolved to absolute segments below the crate root.
pub struct Reference {
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub line: usize,
}

/// The module a file under `src/` is: `lib.rs` the root, `a.rs` and `a/mod.rs` `a`,
/// `a/b.rs` `a::b`.
pub fn module_of(rel: &Path) -> Vec<String> {
    let mut segs: Vec<String> = rel
        .iter()
        .map(|s| s.to_string_lossy().to_string())
        .collect();
    let last = segs.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "mod" | "lib") {
        segs.push(stem.to_string());
    }
    segs
}

/// `text` with comments, strings and char literals replaced by spaces (newlines kept,
/// so line numbers still hold).
pub fn blank(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let keep = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied().unwrap_or(' ');
        let end = if c == '/' && next == '/' {
            (i..b.len()).find(|&j| b[j] == '\n').unwrap_or(b.len())
        } else if c == '/' && next == '*' {
            block_comment_end(&b, i)
        } else if c == 'r' && (next == '"' || next == '#') && !ident_char(prev(&b, i)) {
            raw_string_end(&b, i).unwrap_or(i + 1)
        } else if c == '"' {
            string_end(&b, i)
        } else if c == '\'' {
            char_end(&b, i).unwrap_or(i + 1)
        } else {
            i + 1
        };
        if end == i + 1 {
            out.push(c);
        } else {
            out.extend(b[i..end].iter().map(|&c| keep(c)));
        }
        i = end;
    }
    out
}

fn prev(b: &[char], i: usize) -> char {
    if i == 0 {
        ' '
    } else {
        b[i - 1]
    }
}

pub fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn block_comment_end(b: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0, start);
    while i + 1 < b.len() {
        if b[i] == '/' && b[i + 1] == '*' {
            depth += 1;
            i += 2;
        } else if b[i] == '*' && b[i + 1] == '/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    b.len()
}

fn raw_string_end(b: &[char], start: usize) -> Option<usize> {
    let mut i = start + 1;
    let mut hashes = 0;
    while b.get(i) == Some(&'#') {
        hashes += 1;
        i += 1;
    }
    if b.get(i) != Some(&'"') {
        return None;
    }
    i += 1;
    while i < b.len() {
        if b[i] == '"' && (0..hashes).all(|k| b.get(i + 1 + k) == Some(&'#')) {
            return Some(i + 1 + hashes);
        }
        i += 1;
    }
    Some(b.len())
}

fn string_end(b: &[char], start: usize) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            '\\' => i += 2,
            '"' => return i + 1,
            _ => i += 1,
        }
    }
    b.len()
}

/// `'x'`, `'\n'`, `'\u{1F600}'`; a lifetime (`'a`) is not a literal.
fn char_end(b: &[char], start: usize) -> Option<usize> {
    if b.get(start + 1) == Some(&'\\') {
        let close = (start + 2..b.len().min(start + 12)).find(|&j| b[j] == '\'')?;
        return Some(close + 1);
    }
    (b.get(start + 2) == Some(&'\'')).then_some(start + 3)
}

/// Every path the blanked `code` of module `file_mod` names, resolved. Inline `mod x {`
/// blocks are followed so that `super::` inside them means the file's own module.
pub fn references(code: &str, file_mod: &[String]) -> Vec<Reference> {
    let b: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut inline: Vec<(String, i32)> = Vec::new();
    let (mut depth, mut line, mut i) = (0i32, 1usize, 0usize);
    while i < b.len() {
        let c = b[i];
        match c {
            '\n' => line += 1,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if inline.last().is_some_and(|(_, d)| *d == depth) {
                    inline.pop();
                }
            }
            _ => {}
        }
        if !ident_char(c) || ident_char(prev(&b, i)) || prev(&b, i) == '$' {
            i += 1;
            continue;
        }
        let word: String = b[i..].iter().take_while(|c| ident_char(**c)).collect();
        let after = i + word.chars().count();
        if word == "mod" {
            if let Some(name) = inline_mod(&b, after) {
                inline.push((name, depth));
            }
        }
        let here: Vec<String> = file_mod
            .iter()
            .cloned()
            .chain(inline.iter().map(|(n, _)| n.clone()))
            .collect();
        let path_start = matches!(word.as_str(), "crate" | "super" | "self")
            && b.get(skip_ws(&b, after)) == Some(&':')
            && prev_non_ws(&b, i) != Some(':');
        if path_start {
            let end = read_path(&b, i, &here, file_mod, line, &mut out).max(after);
            line += b[i..end].iter().filter(|c| **c == '\n').count();
            depth += b[i..end].iter().filter(|c| **c == '{').count() as i32;
            depth -= b[i..end].iter().filter(|c| **c == '}').count() as i32;
            i = end;
            continue;
        }
        i = after;
    }
    out
}

/// The path (with its use tree) starting at `i`, written in `here` (file module
/// `file_mod`), resolved into `out`; returns where it ends.
fn read_path(
    b: &[char],
    i: usize,
    here: &[String],
    file_mod: &[String],
    line: usize,
    out: &mut Vec<Reference>,
) -> usize {
    let mut p = Parser { b, i };
    for rel in p.tree() {
        if let Some(to) = resolve(here, &rel) {
            out.push(Reference {
                from: file_mod.to_vec(),
                to,
                line,
            });
        }
    }
    p.i
}

/// `mod name {` (an inline module) starting after the keyword at `at`.
fn inline_mod(b: &[char], at: usize) -> Option<String> {
    let s = skip_ws(b, at);
    let name: String = b[s..].iter().take_while(|c| ident_char(**c)).collect();
    let after = skip_ws(b, s + name.len());
    (!name.is_empty() && b.get(after) == Some(&'{')).then_some(name)
}

fn skip_ws(b: &[char], mut i: usize) -> usize {
    while b.get(i).is_some_and(|c| c.is_whitespace()) {
        i += 1;
    }
    i
}

fn prev_non_ws(b: &[char], i: usize) -> Option<char> {
    b[..i].iter().rev().find(|c| !c.is_whitespace()).copied()
}

/// `crate::a::b` → `[a, b]`; `super::x` and `self::x` relative to `here`.
fn resolve(here: &[String], rel: &[String]) -> Option<Vec<String>> {
    let mut base: Vec<String> = here.to_vec();
    let mut rest = rel;
    match rel.first().map(String::as_str) {
        Some("crate") => {
            base.clear();
            rest = &rel[1..];
        }
        Some("self") => rest = &rel[1..],
        _ => {}
    }
    while rest.first().map(String::as_str) == Some("super") {
        base.pop()?;
        rest = &rest[1..];
    }
    base.extend(rest.iter().filter(|s| *s != "self").cloned());
    Some(base)
}

/// A path with its use tree: `a::b::{c, d::{e, f}}` gives every leaf path.
struct Parser<'a> {
    b: &'a [char],
    i: usize,
}

impl Parser<'_> {
    fn tree(&mut self) -> Vec<Vec<String>> {
        let mut prefix = Vec::new();
        loop {
            self.i = skip_ws(self.b, self.i);
            match self.b.get(self.i) {
                Some('{') => {
                    self.i += 1;
                    let mut all = Vec::new();
                    loop {
                        self.i = skip_ws(self.b, self.i);
                        match self.b.get(self.i) {
                            Some('}') | None => {
                                self.i += 1;
                                break;
                            }
                            Some(',') => self.i += 1,
                            _ => {
                                let before = self.i;
                                for sub in self.tree() {
                                    all.push(prefix.iter().cloned().chain(sub).collect());
                                }
                                if self.i == before {
                                    self.i += 1;
                                }
                            }
                        }
                    }
                    return all;
                }
                Some('*') => {
                    self.i += 1;
                    return vec![prefix];
                }
                Some(c) if ident_char(*c) => {
                    let word: String = self.b[self.i..]
                        .iter()
                        .take_while(|c| ident_char(**c))
                        .collect();
                    self.i += word.len();
                    prefix.push(word);
                    let j = skip_ws(self.b, self.i);
                    if self.b.get(j) == Some(&':') && self.b.get(j + 1) == Some(&':') {
                        self.i = j + 2;
                    } else {
                        return vec![prefix];
                    }
                }
                _ => return vec![prefix],
            }
        }
    }
}
