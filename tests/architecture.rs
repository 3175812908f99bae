//! The module layering of `src/`, checked on the source text.
//!
//! Every top-level module of the library has a rank ([`LAYERS`], lowest first). A module may use
//! itself and modules of strictly lower rank, nothing else: a `crate::x` path (in a `use`, a
//! `use crate::{x, y}` group, or inline in code) from module `m` to a module `x` of equal or higher
//! rank fails the test, naming the file, the line and the edge. Comments and string literals are
//! skipped. `self::` / `super::` paths stay inside their module, except a `super::` that climbs
//! above the module's top file (into `lib.rs`), which is reported too.
//!
//! Also checked: every top-level module has a rank (and every ranked module exists), the module
//! graph has no cycle (each cycle is printed), and the module table in `src/lib.rs`'s doc comment
//! names every top-level module.
//!
//! `src/main.rs` is the binary's own crate root: it can only reach the library's public API, so it
//! is not part of the graph. `src/lib.rs` only declares the modules.
//!
//! Each test collects every violation first and fails once, listing them all.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers, lowest first: a module may use only modules of strictly lower rank (and itself).
///
/// `config` is one rank above `task` because it uses `task` today (`crate::task::MAX_RETRIES_CAP`
/// bounds `TASK_MAX_RETRIES`), while `task` uses nothing; the ranks above keep their order.
const LAYERS: &[(&str, u32)] = &[
    ("task", 0),
    ("config", 1),
    ("telemetry", 2),
    ("queue", 3),
    ("handlers", 4),
    ("vercel", 5),
    ("pool", 6),
    ("api", 7),
    ("app", 8),
    ("cli", 9),
];

fn rank(module: &str) -> Option<u32> {
    LAYERS.iter().find(|(m, _)| *m == module).map(|(_, r)| *r)
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

// ------------------------------------------------------------------------------------------------
// Tokens

/// A code token with the 1-based line it starts on.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// An identifier or keyword (`crate`, `super`, `mod`, ... included; `r#x` as `x`).
    Ident(String),
    /// `::`
    PathSep,
    /// Any other punctuation character (`{`, `}`, `,`, `;`, `$`, ...).
    Punct(char),
}

/// The tokens of Rust source that matter for paths: comments, string / char / byte literals and
/// numbers are dropped; lifetimes are dropped too.
fn tokenize(src: &str) -> Vec<(usize, Tok)> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut line = 1;
    let mut i = 0;
    // Advance over chars[i..j], counting newlines.
    let count_lines = |from: usize, to: usize, line: &mut usize| {
        *line += chars[from..to.min(chars.len())]
            .iter()
            .filter(|&&c| c == '\n')
            .count();
    };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        // Comments.
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && next == Some('*') {
            let start = i;
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            count_lines(start, i, &mut line);
            continue;
        }
        // Raw strings: r"..", r#".."#, br#".."#, cr#".."#.
        let raw_at = match (c, next) {
            ('r', Some('"' | '#')) => Some(i + 1),
            ('b' | 'c', Some('r')) if matches!(chars.get(i + 2), Some('"' | '#')) => Some(i + 2),
            _ => None,
        };
        if let Some(mut j) = raw_at {
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) == Some(&'"') {
                let start = i;
                j += 1;
                loop {
                    if j >= chars.len() {
                        break;
                    }
                    if chars[j] == '"' && (1..=hashes).all(|h| chars.get(j + h) == Some(&'#')) {
                        j += 1 + hashes;
                        break;
                    }
                    j += 1;
                }
                i = j;
                count_lines(start, i, &mut line);
                continue;
            }
            // `r#ident` (a raw identifier): fall through to identifiers below.
        }
        // Strings: "..", b"..", c"..".
        if c == '"' || (matches!(c, 'b' | 'c') && next == Some('"')) {
            let start = i;
            i += if c == '"' { 1 } else { 2 };
            while i < chars.len() && chars[i] != '"' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            count_lines(start, i, &mut line);
            continue;
        }
        // Char and byte literals ('a', '\n', '\u{1F600}', b'x') versus lifetimes ('a).
        if c == '\'' || (c == 'b' && next == Some('\'')) {
            let q = if c == '\'' { i } else { i + 1 };
            match chars.get(q + 1) {
                Some('\\') => {
                    let mut j = q + 2;
                    while j < chars.len() && chars[j] != '\'' {
                        j += 1;
                    }
                    i = j + 1;
                    continue;
                }
                Some(_) if chars.get(q + 2) == Some(&'\'') => {
                    i = q + 3;
                    continue;
                }
                _ if c == '\'' => {
                    // A lifetime or label: skip the quote and its name.
                    i += 1;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    continue;
                }
                _ => {}
            }
        }
        if c == '\n' {
            line += 1;
            i += 1;
            continue;
        }
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() {
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let mut j = i;
            if c == 'r' && next == Some('#') {
                j += 2;
            }
            let start = j;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            out.push((line, Tok::Ident(chars[start..j].iter().collect())));
            i = j;
            continue;
        }
        if c == ':' && next == Some(':') {
            out.push((line, Tok::PathSep));
            i += 2;
            continue;
        }
        out.push((line, Tok::Punct(c)));
        i += 1;
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Paths

/// A path in the source that leaves the current module.
#[derive(Debug, Clone, PartialEq)]
enum Reach {
    /// `crate::<module>...`: `text` is the path as written, up to three segments.
    Crate {
        line: usize,
        module: String,
        text: String,
    },
    /// A `super::` chain that climbs `levels` modules from a place `depth` modules deep.
    Super {
        line: usize,
        levels: usize,
        depth: usize,
    },
}

/// Every `crate::` path and every `super::` chain in `src`, which sits `file_depth` modules below
/// the crate root (`src/x.rs` and `src/x/mod.rs` are 1, `src/x/y.rs` is 2). Inline `mod m { .. }`
/// blocks add one level to the code inside them.
fn reaches(src: &str, file_depth: usize) -> Vec<Reach> {
    let toks = tokenize(src);
    let ident = |k: usize| match toks.get(k) {
        Some((_, Tok::Ident(s))) => Some(s.as_str()),
        _ => None,
    };
    let is = |k: usize, t: &Tok| toks.get(k).map(|(_, x)| x) == Some(t);
    let mut out = Vec::new();
    // Brace depths at which inline modules were opened.
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    let mut k = 0;
    while k < toks.len() {
        let (line, tok) = &toks[k];
        match tok {
            Tok::Punct('{') => braces += 1,
            Tok::Punct('}') => {
                braces = braces.saturating_sub(1);
                if inline_mods.last() == Some(&braces) {
                    inline_mods.pop();
                }
            }
            Tok::Ident(w)
                if w == "mod" && ident(k + 1).is_some() && is(k + 2, &Tok::Punct('{')) =>
            {
                inline_mods.push(braces);
            }
            Tok::Ident(w) if w == "crate" && is(k + 1, &Tok::PathSep) => {
                if is(k + 2, &Tok::Punct('{')) {
                    // `crate::{a, b::c, self}`: the first segment of each item at the group's level.
                    let mut depth = 0;
                    let mut expect_item = true;
                    let mut j = k + 2;
                    while j < toks.len() {
                        match &toks[j].1 {
                            Tok::Punct('{') => {
                                depth += 1;
                                if depth == 1 {
                                    expect_item = true;
                                }
                            }
                            Tok::Punct('}') => {
                                depth -= 1;
                                if depth == 0 {
                                    break;
                                }
                            }
                            Tok::Punct(',') if depth == 1 => expect_item = true,
                            Tok::Ident(m) if depth == 1 && expect_item => {
                                expect_item = false;
                                if m != "self" {
                                    out.push(Reach::Crate {
                                        line: toks[j].0,
                                        module: m.clone(),
                                        text: format!("crate::{{{m}, ..}}"),
                                    });
                                }
                            }
                            _ => {}
                        }
                        j += 1;
                    }
                } else if let Some(m) = ident(k + 2) {
                    let mut text = format!("crate::{m}");
                    if is(k + 3, &Tok::PathSep) {
                        match ident(k + 4) {
                            Some(next) => text.push_str(&format!("::{next}")),
                            None if is(k + 4, &Tok::Punct('{')) => text.push_str("::{..}"),
                            None => {}
                        }
                    }
                    out.push(Reach::Crate {
                        line: *line,
                        module: m.to_string(),
                        text,
                    });
                }
            }
            Tok::Ident(w)
                if w == "super"
                    && is(k + 1, &Tok::PathSep)
                    && !(k >= 2 && is(k - 1, &Tok::PathSep) && ident(k - 2) == Some("super")) =>
            {
                let mut levels = 0;
                let mut j = k;
                while ident(j) == Some("super") && is(j + 1, &Tok::PathSep) {
                    levels += 1;
                    j += 2;
                }
                out.push(Reach::Super {
                    line: *line,
                    levels,
                    depth: file_depth + inline_mods.len(),
                });
            }
            _ => {}
        }
        k += 1;
    }
    out
}

// ------------------------------------------------------------------------------------------------
// The source tree

/// One `.rs` file of the library: its top-level module and how deep it sits.
struct SourceFile {
    /// Relative to the repository, e.g. `src/api/mod.rs`.
    display: String,
    module: String,
    depth: usize,
    text: String,
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every file under `src/` except the crate roots `lib.rs` and `main.rs`.
fn library_files() -> Vec<SourceFile> {
    let src = src_dir();
    let mut paths = Vec::new();
    rust_files(&src, &mut paths);
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let rel = path.strip_prefix(&src).expect("under src/");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().to_string())
            .collect();
        if parts.len() == 1 && (parts[0] == "lib.rs" || parts[0] == "main.rs") {
            continue;
        }
        let module = parts[0].trim_end_matches(".rs").to_string();
        // src/x.rs, src/x/mod.rs: 1; src/x/y.rs, src/x/y/mod.rs: 2; ...
        let depth = parts.len() - usize::from(parts.last().is_some_and(|p| p == "mod.rs"));
        files.push(SourceFile {
            display: format!("src/{}", parts.join("/")),
            module,
            depth,
            text: std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("read {}: {e}", path.display())),
        });
    }
    files
}

/// Top-level modules declared in `src/lib.rs` (`mod x;` / `pub mod x;`, any visibility).
fn declared_modules(lib: &str) -> BTreeSet<String> {
    let toks = tokenize(lib);
    let mut out = BTreeSet::new();
    for w in toks.windows(3) {
        if let [
            (_, Tok::Ident(m)),
            (_, Tok::Ident(name)),
            (_, Tok::Punct(';')),
        ] = w
            && m == "mod"
        {
            out.insert(name.clone());
        }
    }
    out
}

/// A module-to-module use: `from` uses `to` at `file:line` via `text`.
struct Edge {
    from: String,
    to: String,
    at: String,
    text: String,
}

/// Every use of one top-level module by another, plus every `super::` that climbs into lib.rs.
fn edges_and_escapes(modules: &BTreeSet<String>) -> (Vec<Edge>, Vec<String>) {
    let mut edges = Vec::new();
    let mut escapes = Vec::new();
    for f in library_files() {
        for r in reaches(&f.text, f.depth) {
            match r {
                Reach::Crate { line, module, text } => {
                    if module != f.module && modules.contains(&module) {
                        edges.push(Edge {
                            from: f.module.clone(),
                            to: module,
                            at: format!("{}:{line}", f.display),
                            text,
                        });
                    }
                }
                Reach::Super {
                    line,
                    levels,
                    depth,
                } if levels >= depth => escapes.push(format!(
                    "{}:{line}: `{}` climbs {levels} level(s) from {depth} deep, out of `{}` into \
                     the crate root (lib.rs); name the module with `crate::` instead",
                    f.display,
                    "super::".repeat(levels),
                    f.module
                )),
                Reach::Super { .. } => {}
            }
        }
    }
    (edges, escapes)
}

fn all_modules() -> BTreeSet<String> {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("read src/lib.rs");
    declared_modules(&lib)
}

// ------------------------------------------------------------------------------------------------
// The checks

#[test]
fn modules_use_only_lower_layers() {
    let modules = all_modules();
    let (edges, escapes) = edges_and_escapes(&modules);
    let mut violations = escapes;
    for e in &edges {
        let (Some(from), Some(to)) = (rank(&e.from), rank(&e.to)) else {
            continue; // reported by every_top_level_module_is_ranked_and_documented
        };
        if to >= from {
            violations.push(format!(
                "{}: `{}` (rank {from}) uses `{}` (rank {to}) via `{}`",
                e.at, e.from, e.to, e.text
            ));
        }
    }
    assert!(
        !edges.is_empty(),
        "no edges found at all between {modules:?}: is the scanner broken?"
    );
    assert!(
        violations.is_empty(),
        "{} layering violation(s); a module may use only modules of strictly lower rank \
         ({}):\n{}",
        violations.len(),
        LAYERS
            .iter()
            .map(|(m, r)| format!("{r} {m}"))
            .collect::<Vec<_>>()
            .join(", "),
        violations.join("\n")
    );
}

/// Strongly connected components of size > 1 (Tarjan), each as a cycle path through its smallest
/// member, e.g. `api -> cli -> api`.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        sccs: Vec<Vec<&'a str>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        let graph = s.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                scc.push(w);
                if w == v {
                    break;
                }
            }
            s.sccs.push(scc);
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        sccs: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    let mut out = Vec::new();
    for scc in s.sccs.into_iter().filter(|c| c.len() > 1) {
        let members: BTreeSet<&str> = scc.iter().copied().collect();
        let start = *members.iter().next().unwrap();
        // Shortest way back to `start` inside the component (breadth first).
        let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut found = None;
        'bfs: while let Some(v) = queue.pop_front() {
            for w in graph.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !members.contains(w) {
                    continue;
                }
                if w == start {
                    found = Some(v);
                    break 'bfs;
                }
                if !prev.contains_key(w) {
                    prev.insert(w, v);
                    queue.push_back(w);
                }
            }
        }
        let mut path = vec![start.to_string()];
        let mut v = found.expect("a component of size > 1 has a cycle");
        let mut back = vec![v.to_string()];
        while v != start {
            v = prev[v];
            back.push(v.to_string());
        }
        back.pop(); // `start` itself
        back.reverse();
        path.extend(back);
        path.push(start.to_string());
        out.push(path);
    }
    out.sort();
    out
}

#[test]
fn the_module_graph_has_no_cycle() {
    let modules = all_modules();
    let (edges, _) = edges_and_escapes(&modules);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut first_use: BTreeMap<(String, String), String> = BTreeMap::new();
    for e in &edges {
        graph
            .entry(e.from.clone())
            .or_default()
            .insert(e.to.clone());
        first_use
            .entry((e.from.clone(), e.to.clone()))
            .or_insert_with(|| format!("{} `{}`", e.at, e.text));
    }
    let found = cycles(&graph);
    let report: Vec<String> = found
        .iter()
        .map(|c| {
            let hops: Vec<String> = c
                .windows(2)
                .map(|w| {
                    format!(
                        "    {} -> {}: {}",
                        w[0],
                        w[1],
                        first_use[&(w[0].clone(), w[1].clone())]
                    )
                })
                .collect();
            format!("  {}\n{}", c.join(" -> "), hops.join("\n"))
        })
        .collect();
    assert!(
        found.is_empty(),
        "{} cycle(s) in the module graph:\n{}",
        found.len(),
        report.join("\n")
    );
}

#[test]
fn every_top_level_module_is_ranked_and_documented() {
    let lib = std::fs::read_to_string(src_dir().join("lib.rs")).expect("read src/lib.rs");
    let declared = declared_modules(&lib);
    let mut problems = Vec::new();
    // Also modules that exist on disk (src/x.rs, src/x/mod.rs) without a declaration are named.
    let mut on_disk = BTreeSet::new();
    for f in library_files() {
        on_disk.insert(f.module);
    }
    for m in on_disk.difference(&declared) {
        problems.push(format!(
            "src/{m}: a top-level module on disk that src/lib.rs does not declare"
        ));
    }
    for m in &declared {
        if rank(m).is_none() {
            problems.push(format!(
                "`{m}`: a top-level module with no rank in LAYERS (tests/architecture.rs)"
            ));
        }
    }
    for (m, _) in LAYERS {
        if !declared.contains(*m) {
            problems.push(format!(
                "`{m}`: ranked in LAYERS but src/lib.rs declares no such module"
            ));
        }
    }
    // The module table of lib.rs's doc comment: `//! | layer | [`x`], [`y`] | ... |` rows.
    let table: String = lib
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("//!"))
        .filter(|l| l.trim_start().starts_with('|'))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !table.is_empty(),
        "src/lib.rs has no module table in its doc comment"
    );
    for m in &declared {
        if !table.contains(&format!("[`{m}`]")) {
            problems.push(format!(
                "`{m}`: not in the module table of src/lib.rs's doc comment (as [`{m}`])"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) with the module list:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

// ------------------------------------------------------------------------------------------------
// The scanner itself

fn crate_paths(src: &str) -> Vec<(usize, String, String)> {
    reaches(src, 1)
        .into_iter()
        .filter_map(|r| match r {
            Reach::Crate { line, module, text } => Some((line, module, text)),
            Reach::Super { .. } => None,
        })
        .collect()
}

#[test]
fn the_scanner_skips_comments_and_strings_and_finds_groups_and_inline_paths() {
    let src = r####"
// use crate::cli::ignored_line_comment;
/* use crate::cli::ignored_block; /* nested crate::cli */ still crate::cli */
/// Doc comments too: crate::cli::stats_json
use crate::queue::{QueueStore, scripts::{self, Lua}};
use crate::{config, task::TaskRecord, self};
fn f<'a>(x: &'a str) -> char {
    let s = "crate::cli::in_a_string \" crate::cli";
    let r = r#"crate::cli::"raw" string"#;
    let b = b"crate::cli";
    let q = '"'; let e = '\''; let u = '\u{1F600}';
    crate::telemetry::metrics::install();
    let y = crate::vercel
        ::client::Operation::Create;
    pub(crate) fn g() {}
    'label: loop { break 'label; }
    let r#type = 1;
    'x'
}
"####;
    let found = crate_paths(src);
    let got: Vec<(usize, &str, &str)> = found
        .iter()
        .map(|(l, m, t)| (*l, m.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        got,
        vec![
            (5, "queue", "crate::queue::{..}"),
            (6, "config", "crate::{config, ..}"),
            (6, "task", "crate::{task, ..}"),
            (12, "telemetry", "crate::telemetry::metrics"),
            (13, "vercel", "crate::vercel::client"),
        ]
    );
}

#[test]
fn super_paths_that_climb_out_of_the_top_file_are_caught() {
    let src = r#"
use super::sibling;
mod tests {
    use super::*;
    fn t() { super::super::x(); }
}
"#;
    let supers: Vec<(usize, usize, usize)> = reaches(src, 1)
        .into_iter()
        .filter_map(|r| match r {
            Reach::Super {
                line,
                levels,
                depth,
            } => Some((line, levels, depth)),
            Reach::Crate { .. } => None,
        })
        .collect();
    // Line 2 climbs 1 level from depth 1 (out of the module); line 4 stays inside (depth 2);
    // line 5 climbs 2 levels from depth 2 (out of the module).
    assert_eq!(supers, vec![(2, 1, 1), (4, 1, 2), (5, 2, 2)]);
    let escaping: Vec<usize> = supers
        .iter()
        .filter(|(_, levels, depth)| levels >= depth)
        .map(|(line, _, _)| *line)
        .collect();
    assert_eq!(escaping, vec![2, 5]);
    // From a file one level down (src/x/y.rs), a single `super::` stays inside `x`.
    assert!(reaches("use super::z;", 2).iter().all(|r| matches!(
        r,
        Reach::Super {
            levels: 1,
            depth: 2,
            ..
        }
    )));
}

#[test]
fn cycles_are_reported_as_paths() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (a, b) in [
        ("api", "cli"),
        ("cli", "api"),
        ("telemetry", "vercel"),
        ("vercel", "queue"),
        ("queue", "telemetry"),
        ("app", "api"),
    ] {
        g.entry(a.into()).or_default().insert(b.into());
    }
    assert_eq!(
        cycles(&g),
        vec![
            vec!["api", "cli", "api"],
            vec!["queue", "telemetry", "vercel", "queue"],
        ]
    );
    g.remove("cli");
    g.remove("queue");
    assert!(cycles(&g).is_empty());
}
