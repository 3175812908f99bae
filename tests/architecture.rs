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
    let mut lx = Lexer {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        out: Vec::new(),
    };
    while lx.i < lx.chars.len() {
        // Each step consumes what it recognises and says so; the last one always consumes.
        let skipped = lx.line_comment()
            || lx.block_comment()
            || lx.raw_string()
            || lx.string()
            || lx.char_or_lifetime();
        if !skipped {
            lx.token();
        }
    }
    lx.out
}

/// A cursor over the characters of one source file.
struct Lexer {
    /// The whole file.
    chars: Vec<char>,
    /// The next character to read.
    i: usize,
    /// The 1-based line of `chars[i]`.
    line: usize,
    /// The tokens found so far.
    out: Vec<(usize, Tok)>,
}

impl Lexer {
    fn at(&self, k: usize) -> Option<char> {
        self.chars.get(k).copied()
    }

    /// Move to `to`, counting the newlines passed over.
    fn advance_to(&mut self, to: usize) {
        let end = to.min(self.chars.len());
        let from = self.i.min(end);
        self.line += self.chars[from..end].iter().filter(|&&c| c == '\n').count();
        self.i = to;
    }

    /// The end of the identifier-like run (alphanumerics and `_`) starting at `from`.
    fn word_end(&self, from: usize) -> usize {
        let mut j = from;
        while j < self.chars.len() && (self.chars[j].is_alphanumeric() || self.chars[j] == '_') {
            j += 1;
        }
        j
    }

    /// `// ...` up to (not including) the newline.
    fn line_comment(&mut self) -> bool {
        if !(self.at(self.i) == Some('/') && self.at(self.i + 1) == Some('/')) {
            return false;
        }
        while self.i < self.chars.len() && self.chars[self.i] != '\n' {
            self.i += 1;
        }
        true
    }

    /// `/* ... */`, nested.
    fn block_comment(&mut self) -> bool {
        if !(self.at(self.i) == Some('/') && self.at(self.i + 1) == Some('*')) {
            return false;
        }
        let mut j = self.i;
        let mut depth = 0;
        while j < self.chars.len() {
            if self.chars[j] == '/' && self.at(j + 1) == Some('*') {
                depth += 1;
                j += 2;
            } else if self.chars[j] == '*' && self.at(j + 1) == Some('/') {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    break;
                }
            } else {
                j += 1;
            }
        }
        self.advance_to(j);
        true
    }

    /// Raw strings: `r".."`, `r#".."#`, `br#".."#`, `cr#".."#`. A raw identifier (`r#ident`) is
    /// left for [`Lexer::token`].
    fn raw_string(&mut self) -> bool {
        let raw_at = match (self.chars[self.i], self.at(self.i + 1)) {
            ('r', Some('"' | '#')) => Some(self.i + 1),
            ('b' | 'c', Some('r')) if matches!(self.at(self.i + 2), Some('"' | '#')) => {
                Some(self.i + 2)
            }
            _ => None,
        };
        let Some(mut j) = raw_at else {
            return false;
        };
        let mut hashes = 0;
        while self.at(j) == Some('#') {
            hashes += 1;
            j += 1;
        }
        if self.at(j) != Some('"') {
            return false;
        }
        j += 1;
        while j < self.chars.len() {
            if self.chars[j] == '"' && (1..=hashes).all(|h| self.at(j + h) == Some('#')) {
                j += 1 + hashes;
                break;
            }
            j += 1;
        }
        self.advance_to(j);
        true
    }

    /// Strings: `".."`, `b".."`, `c".."`, with backslash escapes.
    fn string(&mut self) -> bool {
        let c = self.chars[self.i];
        if !(c == '"' || (matches!(c, 'b' | 'c') && self.at(self.i + 1) == Some('"'))) {
            return false;
        }
        let mut j = self.i + if c == '"' { 1 } else { 2 };
        while j < self.chars.len() && self.chars[j] != '"' {
            j += if self.chars[j] == '\\' { 2 } else { 1 };
        }
        self.advance_to(j + 1);
        true
    }

    /// Char and byte literals (`'a'`, `'\n'`, `'\u{1F600}'`, `b'x'`) versus lifetimes and labels
    /// (`'a`), which are skipped with their name.
    fn char_or_lifetime(&mut self) -> bool {
        let c = self.chars[self.i];
        if !(c == '\'' || (c == 'b' && self.at(self.i + 1) == Some('\''))) {
            return false;
        }
        let q = if c == '\'' { self.i } else { self.i + 1 };
        match self.at(q + 1) {
            Some('\\') => {
                let mut j = q + 2;
                while j < self.chars.len() && self.chars[j] != '\'' {
                    j += 1;
                }
                self.i = j + 1;
                true
            }
            Some(_) if self.at(q + 2) == Some('\'') => {
                self.i = q + 3;
                true
            }
            _ if c == '\'' => {
                self.i = self.word_end(self.i + 1);
                true
            }
            _ => false,
        }
    }

    /// Whitespace and numbers (dropped), identifiers, `::` and single punctuation characters.
    fn token(&mut self) {
        let (c, next) = (self.chars[self.i], self.at(self.i + 1));
        if c == '\n' {
            self.line += 1;
            self.i += 1;
        } else if c.is_whitespace() {
            self.i += 1;
        } else if c.is_ascii_digit() {
            self.i = self.word_end(self.i);
        } else if c.is_alphabetic() || c == '_' {
            let start = if c == 'r' && next == Some('#') {
                self.i + 2
            } else {
                self.i
            };
            let end = self.word_end(start);
            let word = self.chars[start..end].iter().collect();
            self.out.push((self.line, Tok::Ident(word)));
            self.i = end;
        } else if c == ':' && next == Some(':') {
            self.out.push((self.line, Tok::PathSep));
            self.i += 2;
        } else {
            self.out.push((self.line, Tok::Punct(c)));
            self.i += 1;
        }
    }
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
    let p = Paths { toks: &toks };
    let mut out = Vec::new();
    // Brace depths at which inline modules were opened.
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut braces = 0usize;
    for (k, (line, tok)) in toks.iter().enumerate() {
        match tok {
            Tok::Punct('{') => braces += 1,
            Tok::Punct('}') => {
                braces = braces.saturating_sub(1);
                if inline_mods.last() == Some(&braces) {
                    inline_mods.pop();
                }
            }
            Tok::Ident(w) if w == "mod" && p.opens_inline_mod(k) => inline_mods.push(braces),
            Tok::Ident(w) if w == "crate" && p.is(k + 1, &Tok::PathSep) => {
                p.crate_paths(k, &mut out);
            }
            Tok::Ident(w) if w == "super" && p.starts_super_chain(k) => out.push(Reach::Super {
                line: *line,
                levels: p.super_levels(k),
                depth: file_depth + inline_mods.len(),
            }),
            _ => {}
        }
    }
    out
}

/// Lookups into the tokens of one file, for [`reaches`].
struct Paths<'t> {
    /// The file's tokens.
    toks: &'t [(usize, Tok)],
}

impl Paths<'_> {
    /// The identifier at `k`, if that token is one.
    fn ident(&self, k: usize) -> Option<&str> {
        match self.toks.get(k) {
            Some((_, Tok::Ident(s))) => Some(s.as_str()),
            _ => None,
        }
    }

    /// The token at `k` is `t`.
    fn is(&self, k: usize, t: &Tok) -> bool {
        self.toks.get(k).map(|(_, x)| x) == Some(t)
    }

    /// `mod` at `k` starts `mod name {`.
    fn opens_inline_mod(&self, k: usize) -> bool {
        self.ident(k + 1).is_some() && self.is(k + 2, &Tok::Punct('{'))
    }

    /// The paths of `crate::` at `k` (followed by `::`): a group or a single path.
    fn crate_paths(&self, k: usize, out: &mut Vec<Reach>) {
        if self.is(k + 2, &Tok::Punct('{')) {
            self.crate_group(k + 2, out);
        } else if let Some(r) = self.crate_path(k) {
            out.push(r);
        }
    }

    /// `crate::{a, b::c, self}` with `{` at `open`: the first segment of each item at the group's
    /// level (`self` is not a module).
    fn crate_group(&self, open: usize, out: &mut Vec<Reach>) {
        let mut depth = 0;
        let mut expect_item = true;
        for (line, tok) in &self.toks[open..] {
            match tok {
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
                            line: *line,
                            module: m.clone(),
                            text: format!("crate::{{{m}, ..}}"),
                        });
                    }
                }
                _ => {}
            }
        }
    }

    /// `crate::m`, `crate::m::next` or `crate::m::{..}` at `k`, as written (up to three segments).
    fn crate_path(&self, k: usize) -> Option<Reach> {
        let m = self.ident(k + 2)?;
        let mut text = format!("crate::{m}");
        if self.is(k + 3, &Tok::PathSep) {
            match self.ident(k + 4) {
                Some(next) => text.push_str(&format!("::{next}")),
                None if self.is(k + 4, &Tok::Punct('{')) => text.push_str("::{..}"),
                None => {}
            }
        }
        Some(Reach::Crate {
            line: self.toks[k].0,
            module: m.to_string(),
            text,
        })
    }

    /// `super::` at `k` that is the first of its chain (not preceded by `super::`).
    fn starts_super_chain(&self, k: usize) -> bool {
        self.is(k + 1, &Tok::PathSep)
            && !(k >= 2 && self.is(k - 1, &Tok::PathSep) && self.ident(k - 2) == Some("super"))
    }

    /// How many `super::` follow each other from `k`.
    fn super_levels(&self, k: usize) -> usize {
        let mut levels = 0;
        let mut j = k;
        while self.ident(j) == Some("super") && self.is(j + 1, &Tok::PathSep) {
            levels += 1;
            j += 2;
        }
        levels
    }
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
    let mut out: Vec<Vec<String>> = components(graph)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|scc| cycle_through_smallest(graph, &scc.into_iter().collect()))
        .collect();
    out.sort();
    out
}

/// The strongly connected components of `graph` (Tarjan's algorithm).
fn components(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<&str>> {
    let mut t = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        sccs: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.sccs
}

/// The bookkeeping of Tarjan's algorithm over one graph.
struct Tarjan<'a> {
    /// The graph being searched.
    graph: &'a BTreeMap<String, BTreeSet<String>>,
    /// Visit order of each node seen.
    index: BTreeMap<&'a str, usize>,
    /// Lowest visit order reachable from each node through the stack.
    low: BTreeMap<&'a str, usize>,
    /// Nodes of components not yet closed.
    stack: Vec<&'a str>,
    /// Membership of `stack`.
    on_stack: BTreeSet<&'a str>,
    /// The components found so far.
    sccs: Vec<Vec<&'a str>>,
}

impl<'a> Tarjan<'a> {
    fn visit(&mut self, v: &'a str) {
        let n = self.index.len();
        self.index.insert(v, n);
        self.low.insert(v, n);
        self.stack.push(v);
        self.on_stack.insert(v);
        let graph = self.graph;
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !self.index.contains_key(w) {
                self.visit(w);
                self.lower(v, self.low[w]);
            } else if self.on_stack.contains(w) {
                self.lower(v, self.index[w]);
            }
        }
        if self.low[v] == self.index[v] {
            self.close(v);
        }
    }

    /// `low[v] = min(low[v], to)`.
    fn lower(&mut self, v: &'a str, to: usize) {
        if let Some(lv) = self.low.get_mut(v) {
            *lv = (*lv).min(to);
        }
    }

    /// Pop the component rooted at `v` off the stack.
    fn close(&mut self, v: &'a str) {
        let mut scc = Vec::new();
        while let Some(w) = self.stack.pop() {
            self.on_stack.remove(w);
            scc.push(w);
            if w == v {
                break;
            }
        }
        self.sccs.push(scc);
    }
}

/// The shortest cycle inside the component `members` from its smallest member back to it, as a
/// path `start -> .. -> start`.
fn cycle_through_smallest(
    graph: &BTreeMap<String, BTreeSet<String>>,
    members: &BTreeSet<&str>,
) -> Vec<String> {
    let start = *members.iter().next().expect("a component has a member");
    let (last, prev) = way_back(graph, members, start);
    let mut v = last.expect("a component of size > 1 has a cycle");
    let mut back = vec![v.to_string()];
    while v != start {
        v = prev[v];
        back.push(v.to_string());
    }
    back.pop(); // `start` itself
    back.reverse();
    let mut path = vec![start.to_string()];
    path.extend(back);
    path.push(start.to_string());
    path
}

/// Breadth first from `start` inside `members`: the node with an edge back to `start` (if any)
/// and the predecessor of every node reached.
fn way_back<'a>(
    graph: &'a BTreeMap<String, BTreeSet<String>>,
    members: &BTreeSet<&str>,
    start: &'a str,
) -> (Option<&'a str>, BTreeMap<&'a str, &'a str>) {
    let mut prev: BTreeMap<&str, &str> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(v) = queue.pop_front() {
        for w in graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !members.contains(w) {
                continue;
            }
            if w == start {
                return (Some(v), prev);
            }
            if !prev.contains_key(w) {
                prev.insert(w, v);
                queue.push_back(w);
            }
        }
    }
    (None, prev)
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
