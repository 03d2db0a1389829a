//! The shape of `src/`: no file imports a file that imports it back, directly or through
//! others, and no file is over 600 lines.
//!
//! A cycle between files (a parent `mod.rs` and its child count: a child using
//! `super::Item` defined in its parent's `mod.rs`, while the parent uses the child, is one)
//! means neither file can be read, tested or moved without the other; the usual fix is to
//! move what both need into a leaf module that both use. The checker reads the source as
//! text, with the standard library only: a node is a file module (`src/a/b.rs` or
//! `src/a/b/mod.rs` is `a::b`, `lib.rs` the crate root); comments, string and character
//! literals and `#[cfg(test)] mod ... { ... }` blocks are dropped; the paths are those of
//! `use` items (brace groups expanded), every `crate::`, `super::` and `self::` path, and
//! `child::x` where `child` is a module the file declares; each resolves to the longest
//! prefix that is a file module. Edges to the file itself or to `lib.rs` do not count.
//! `main.rs` is the binary's own crate root: nothing in the library can name it, so it is
//! in no cycle and only its size is checked. `/work/modgraph.py`-style output: every
//! strongly connected component of more than one file, with its edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The most lines a file under `src/` may have.
const MAX_LINES: usize = 600;

#[test]
fn src_has_no_import_cycles() {
    // A checker that finds nothing would pass anything: prove it on known trees first.
    the_checker_finds_known_cycles_and_only_those();
    let sources = read_tree(&src_dir());
    let graph = Graph::new(&sources);
    let cycles = graph.cycles();
    assert!(cycles.is_empty(), "{}", graph.report(&cycles));
}

#[test]
fn src_files_are_at_most_600_lines() {
    let sources = read_tree(&src_dir());
    let big: Vec<String> = sources
        .iter()
        .map(|(path, text)| (path, text.lines().count()))
        .filter(|(_, lines)| *lines > MAX_LINES)
        .map(|(path, lines)| format!("    src/{path}: {lines} lines"))
        .collect();
    assert!(
        big.is_empty(),
        "{} file(s) under src/ are over {MAX_LINES} lines; split each by concern into \
         smaller modules named after what they do:\n{}",
        big.len(),
        big.join("\n")
    );
}

#[test]
fn the_checker_finds_known_cycles_and_only_those() {
    // Parent mod.rs <-> child (a `child::` path one way, `super::` the other), and a
    // sibling pair (a nested brace group one way, a path in a type the other, behind a
    // character literal holding a quote that must not open a string).
    let cyclic = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod p;\nmod util;\n"),
        (
            "p/mod.rs",
            "mod child;\npub struct Shared;\npub fn f() -> child::Thing { child::Thing }\n",
        ),
        ("p/child.rs", "use super::Shared;\npub struct Thing;\n"),
        (
            "a.rs",
            "use crate::{util, b::{B, self as bee}};\npub struct A;\n",
        ),
        (
            "b.rs",
            "const Q: char = '\"';\nfn f<'a>(s: &'a str) -> crate::a::A { todo!() }\npub struct B;\n",
        ),
        ("util.rs", "pub fn help() {}\n"),
    ]);
    let graph = Graph::new(&cyclic);
    let cycles = graph.cycles();
    let found: BTreeSet<Vec<&str>> = cycles
        .iter()
        .map(|c| c.iter().map(|m| graph.files[m].as_str()).collect())
        .collect();
    let expected: BTreeSet<Vec<&str>> = [vec!["a.rs", "b.rs"], vec!["p/child.rs", "p/mod.rs"]]
        .into_iter()
        .collect();
    assert_eq!(found, expected, "{}", graph.report(&cycles));
    let report = graph.report(&cycles);
    for line in [
        "p/child.rs -> p/mod.rs (super::Shared)",
        "p/mod.rs -> p/child.rs (child::Thing)",
        "a.rs -> b.rs (crate::b::B)",
        "b.rs -> a.rs (crate::a::A)",
    ] {
        assert!(report.contains(line), "{line:?} missing from:\n{report}");
    }

    // The same tree with every back edge only in a comment, a string, a raw string with a
    // quote inside, a nested block comment, or a test module: no cycle, and the forward
    // edges are still seen.
    let acyclic = tree(&[
        ("lib.rs", "pub mod a;\npub mod b;\npub mod p;\n"),
        (
            "p/mod.rs",
            "mod child;\npub struct Shared;\npub use child::Thing;\n",
        ),
        (
            "p/child.rs",
            "// use super::Shared;\npub struct Thing;\n\
             const S: &str = \"super::Shared \\\" crate::p::Shared\";\n\
             #[cfg(test)]\n#[allow(dead_code)]\nmod tests {\n    use super::super::Shared;\n    fn f() { let _ = { crate::p::Shared }; }\n}\n",
        ),
        (
            "a.rs",
            "pub struct A;\nconst R: &str = r#\"a \" crate::b::B \"#;\n\
             /* outer /* inner */ crate::b::B */\nconst C: char = '\\'';\n",
        ),
        ("b.rs", "use crate::a::A;\npub struct B;\n"),
    ]);
    let graph = Graph::new(&acyclic);
    let cycles = graph.cycles();
    assert!(cycles.is_empty(), "{}", graph.report(&cycles));
    let module = |path: &str| {
        graph
            .files
            .iter()
            .find(|(_, p)| p.as_str() == path)
            .map(|(m, _)| m.clone())
            .unwrap()
    };
    assert!(graph.edges[&module("b.rs")].contains_key(&module("a.rs")));
    assert!(graph.edges[&module("p/mod.rs")].contains_key(&module("p/child.rs")));
    assert!(graph.edges[&module("a.rs")].is_empty(), "{:?}", graph.edges);
    assert!(
        graph.edges[&module("p/child.rs")].is_empty(),
        "{:?}",
        graph.edges
    );
}

fn src_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn tree(files: &[(&str, &str)]) -> BTreeMap<String, String> {
    files
        .iter()
        .map(|(path, text)| (path.to_string(), text.to_string()))
        .collect()
}

/// Every `.rs` file under `dir`, by its path relative to `dir` (with `/`), with its text.
fn read_tree(dir: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        let entries =
            std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
                let rel = path.strip_prefix(root).unwrap();
                let rel: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                out.insert(rel.join("/"), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    assert!(
        out.contains_key("lib.rs"),
        "no lib.rs under {}",
        dir.display()
    );
    out
}

/// A file module's path: `["a", "b"]` for `a/b.rs` or `a/b/mod.rs`, empty for `lib.rs`.
type Module = Vec<String>;

/// The file-level import graph.
struct Graph {
    /// Each module's file, relative to the source folder.
    files: BTreeMap<Module, String>,
    /// For each module, the modules it uses, each with the first path that does.
    edges: BTreeMap<Module, BTreeMap<Module, String>>,
}

impl Graph {
    fn new(sources: &BTreeMap<String, String>) -> Self {
        let files: BTreeMap<Module, String> = sources
            .keys()
            .filter(|path| path.as_str() != "main.rs")
            .map(|path| (module_of(path), path.clone()))
            .collect();
        let edges = files
            .iter()
            .map(|(module, path)| {
                let tokens = without_test_modules(tokens(&strip(&sources[path])));
                let deps = uses(module, &tokens)
                    .into_iter()
                    .filter_map(|(absolute, text)| {
                        let target = resolve(&files, &absolute);
                        (target != *module && !target.is_empty()).then_some((target, text))
                    })
                    .fold(BTreeMap::new(), |mut deps, (target, text)| {
                        deps.entry(target).or_insert(text);
                        deps
                    });
                (module.clone(), deps)
            })
            .collect();
        Self { files, edges }
    }

    /// The strongly connected components of more than one module (Tarjan's algorithm),
    /// each sorted by file path.
    fn cycles(&self) -> Vec<Vec<Module>> {
        struct Tarjan<'g> {
            graph: &'g Graph,
            next: usize,
            index: BTreeMap<&'g Module, (usize, usize)>,
            stack: Vec<&'g Module>,
            on_stack: BTreeSet<&'g Module>,
            found: Vec<Vec<Module>>,
        }
        impl<'g> Tarjan<'g> {
            fn visit(&mut self, v: &'g Module) {
                let mine = self.next;
                self.next += 1;
                self.index.insert(v, (mine, mine));
                self.stack.push(v);
                self.on_stack.insert(v);
                for w in self.graph.edges[v].keys() {
                    let low = match self.index.get(w) {
                        None => {
                            self.visit(w);
                            self.index[w].1
                        }
                        Some(&(index, _)) if self.on_stack.contains(w) => index,
                        Some(_) => continue,
                    };
                    let entry = self.index.get_mut(v).unwrap();
                    entry.1 = entry.1.min(low);
                }
                if self.index[v].1 == mine {
                    let mut component = Vec::new();
                    while let Some(w) = self.stack.pop() {
                        self.on_stack.remove(w);
                        component.push(w.clone());
                        if w == v {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_by(|a, b| self.graph.files[a].cmp(&self.graph.files[b]));
                        self.found.push(component);
                    }
                }
            }
        }
        let mut tarjan = Tarjan {
            graph: self,
            next: 0,
            index: BTreeMap::new(),
            stack: Vec::new(),
            on_stack: BTreeSet::new(),
            found: Vec::new(),
        };
        for module in self.files.keys() {
            if !tarjan.index.contains_key(module) {
                tarjan.visit(module);
            }
        }
        let mut found = tarjan.found;
        found.sort_by(|a, b| self.files[&a[0]].cmp(&self.files[&b[0]]));
        found
    }

    /// Each cycle with its files and the edges inside it, each edge with the path that
    /// makes it.
    fn report(&self, cycles: &[Vec<Module>]) -> String {
        let mut out = format!(
            "{} import cycle(s) between files under src/. A file must not use a file that \
             uses it back, directly or through others (a child using `super::` items of its \
             parent's mod.rs counts); move what both sides need into a leaf module that both \
             use. The edges, each with the first path that makes it:\n",
            cycles.len()
        );
        for cycle in cycles {
            let names: Vec<&str> = cycle.iter().map(|m| self.files[m].as_str()).collect();
            out.push_str(&format!("cycle: {}\n", names.join(", ")));
            for from in cycle {
                for (to, text) in &self.edges[from] {
                    if cycle.contains(to) {
                        out.push_str(&format!(
                            "    {} -> {} ({text})\n",
                            self.files[from], self.files[to]
                        ));
                    }
                }
            }
        }
        out
    }
}

/// The module a file under the source folder is.
fn module_of(path: &str) -> Module {
    let mut parts: Vec<String> = path
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.last().is_some_and(|p| p == "mod") || parts == ["lib"] {
        parts.pop();
    }
    parts
}

/// The longest prefix of `path` that is a file module (the crate root at worst).
fn resolve(files: &BTreeMap<Module, String>, path: &[String]) -> Module {
    (0..=path.len())
        .rev()
        .map(|k| path[..k].to_vec())
        .find(|prefix| files.contains_key(prefix))
        .unwrap_or_default()
}

/// The source with comments removed (block comments nest), every string literal (plain,
/// byte, C, raw) reduced to `""` and every character literal to `' '`; lifetimes and
/// labels are kept.
fn strip(src: &str) -> String {
    let s = src.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let starts_word = i == 0 || !ident(s[i - 1]);
        if s[i..].starts_with(b"//") {
            while i < s.len() && s[i] != b'\n' {
                i += 1;
            }
        } else if s[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < s.len() {
                if s[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if s[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(b' ');
        } else if let Some(end) = starts_word.then(|| raw_string_end(s, i)).flatten() {
            out.extend_from_slice(b"\"\"");
            i = end;
        } else if s[i] == b'"' {
            i += 1;
            while i < s.len() && s[i] != b'"' {
                i += if s[i] == b'\\' { 2 } else { 1 };
            }
            out.extend_from_slice(b"\"\"");
            i += 1;
        } else if s[i] == b'\'' {
            match char_literal_end(s, i) {
                Some(end) => {
                    out.extend_from_slice(b"' '");
                    i = end;
                }
                None => {
                    out.push(b'\'');
                    i += 1;
                }
            }
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    // Only whole literals and comments were cut, at ASCII delimiters.
    String::from_utf8_lossy(&out).into_owned()
}

/// Where the raw string literal starting at `i` (`r"…"`, `br#"…"#`, `cr##"…"##`) ends,
/// if one starts there; `r#ident` is a raw identifier, not a string.
fn raw_string_end(s: &[u8], i: usize) -> Option<usize> {
    let mut j = i;
    if matches!(s.get(j), Some(b'b' | b'c')) {
        j += 1;
    }
    if s.get(j) != Some(&b'r') {
        return None;
    }
    j += 1;
    let hashes = s[j..].iter().take_while(|&&b| b == b'#').count();
    j += hashes;
    if s.get(j) != Some(&b'"') {
        return None;
    }
    let mut closing = vec![b'"'];
    closing.extend(std::iter::repeat_n(b'#', hashes));
    let body = j + 1;
    Some(
        s[body..]
            .windows(closing.len())
            .position(|w| w == closing.as_slice())
            .map_or(s.len(), |p| body + p + closing.len()),
    )
}

/// Where the character literal starting at the quote at `i` ends, or `None` when the quote
/// starts a lifetime or a label (`'a`, `'static`).
fn char_literal_end(s: &[u8], i: usize) -> Option<usize> {
    if s.get(i + 1) == Some(&b'\\') {
        // An escape: `'\''`, `'\n'`, `'\u{1F600}'`; the closing quote follows it.
        let close = s.get(i + 3..)?.iter().position(|&b| b == b'\'')?;
        return Some(i + 3 + close + 1);
    }
    // One character (up to four bytes in UTF-8), then the closing quote.
    let width = match s.get(i + 1)? {
        b if *b < 0x80 => 1,
        b if *b >= 0xf0 => 4,
        b if *b >= 0xe0 => 3,
        _ => 2,
    };
    (s.get(i + 1 + width) == Some(&b'\'')).then_some(i + 2 + width)
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    /// `::`
    PathSep,
    Punct(char),
}

fn tokens(src: &str) -> Vec<Token> {
    let mut out = Vec::new();
    let mut chars = src.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            let mut word = String::from(c);
            while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                word.push(n);
                chars.next();
            }
            out.push(Token::Word(word));
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            out.push(Token::PathSep);
        } else if !c.is_whitespace() {
            out.push(Token::Punct(c));
        }
    }
    out
}

fn is_word(token: Option<&Token>, word: &str) -> bool {
    matches!(token, Some(Token::Word(w)) if w == word)
}

/// The index just past the bracketed group that opens at `i` (`open` there), or the end.
fn past_group(tokens: &[Token], i: usize, open: char, close: char) -> usize {
    let mut depth = 0usize;
    for (j, token) in tokens.iter().enumerate().skip(i) {
        match token {
            Token::Punct(c) if *c == open => depth += 1,
            Token::Punct(c) if *c == close => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
    }
    tokens.len()
}

/// The tokens without `#[cfg(test)] mod name { … }` blocks (other attributes may stand
/// between the `cfg` and the `mod`).
fn without_test_modules(tokens: Vec<Token>) -> Vec<Token> {
    let cfg_test: [Token; 7] = [
        Token::Punct('#'),
        Token::Punct('['),
        Token::Word("cfg".into()),
        Token::Punct('('),
        Token::Word("test".into()),
        Token::Punct(')'),
        Token::Punct(']'),
    ];
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i..].starts_with(&cfg_test) {
            let mut j = i + cfg_test.len();
            while tokens.get(j) == Some(&Token::Punct('#'))
                && tokens.get(j + 1) == Some(&Token::Punct('['))
            {
                j = past_group(&tokens, j + 1, '[', ']');
            }
            if is_word(tokens.get(j), "mod")
                && matches!(tokens.get(j + 1), Some(Token::Word(_)))
                && tokens.get(j + 2) == Some(&Token::Punct('{'))
            {
                i = past_group(&tokens, j + 2, '{', '}');
                continue;
            }
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Every module path the file at `module` names, made absolute (from the crate root), each
/// with its text as written.
fn uses(module: &Module, tokens: &[Token]) -> Vec<(Module, String)> {
    let children: BTreeSet<&str> = tokens
        .windows(3)
        .filter(|w| w[0] == Token::Word("mod".into()))
        .filter(|w| matches!(w[2], Token::Punct(';' | '{')))
        .filter_map(|w| match &w[1] {
            Token::Word(name) => Some(name.as_str()),
            _ => None,
        })
        .collect();
    let mut paths: Vec<Vec<String>> = Vec::new();
    // `use` items, brace groups expanded, aliases and globs dropped.
    for (i, _) in tokens
        .iter()
        .enumerate()
        .filter(|(_, t)| **t == Token::Word("use".into()))
    {
        let end = tokens[i..]
            .iter()
            .position(|t| *t == Token::Punct(';'))
            .map_or(tokens.len(), |p| i + p);
        let mut at = i + 1;
        use_tree(&tokens[..end], &mut at, &[], &mut paths);
    }
    // `crate::…`, `super::…`, `self::…` anywhere, and `child::…` for a declared child.
    for (i, token) in tokens.iter().enumerate() {
        let Token::Word(first) = token else { continue };
        let anchored = matches!(first.as_str(), "crate" | "super" | "self");
        let child = children.contains(first.as_str())
            && i.checked_sub(1).and_then(|p| tokens.get(p)) != Some(&Token::PathSep);
        if !(anchored || child) || tokens.get(i + 1) != Some(&Token::PathSep) {
            continue;
        }
        let mut path = vec![first.clone()];
        let mut j = i + 1;
        while tokens.get(j) == Some(&Token::PathSep) {
            match tokens.get(j + 1) {
                Some(Token::Word(w)) => path.push(w.clone()),
                _ => break,
            }
            j += 2;
        }
        if path.len() > 1 {
            paths.push(path);
        }
    }
    paths
        .into_iter()
        .filter_map(|path| {
            let text = path.join("::");
            let absolute = match path.first()?.as_str() {
                "crate" => path[1..].to_vec(),
                "super" | "self" => {
                    let mut base = module.clone();
                    let mut rest = path.as_slice();
                    while let Some(first) = rest.first().filter(|f| *f == "super" || *f == "self") {
                        if first == "super" {
                            base.pop();
                        }
                        rest = &rest[1..];
                    }
                    base.extend_from_slice(rest);
                    base
                }
                first if children.contains(first) => {
                    let mut absolute = module.clone();
                    absolute.extend_from_slice(&path);
                    absolute
                }
                _ => return None,
            };
            Some((absolute, text))
        })
        .collect()
}

/// Reads one use tree at `*at` (`a::b`, `a::b as c`, `a::*`, `a::{b, c::{d, e}}`),
/// appending each path it names, after `prefix`, to `out`.
fn use_tree(tokens: &[Token], at: &mut usize, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let mut path = prefix.to_vec();
    let mut named = false;
    while let Some(token) = tokens.get(*at) {
        match token {
            Token::PathSep => *at += 1,
            Token::Word(w) if w == "as" => *at += 2,
            Token::Word(w) => {
                path.push(w.clone());
                named = true;
                *at += 1;
            }
            Token::Punct('*') => *at += 1,
            Token::Punct('{') => {
                *at += 1;
                loop {
                    use_tree(tokens, at, &path, out);
                    match tokens.get(*at) {
                        Some(Token::Punct(',')) => *at += 1,
                        Some(Token::Punct('}')) => {
                            *at += 1;
                            return;
                        }
                        _ => return,
                    }
                }
            }
            _ => break,
        }
    }
    if named {
        out.push(path);
    }
}
