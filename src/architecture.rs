//! The arrows between the crate's layers, checked: a test reads every source file under `src/` and fails when a
//! module reaches one it must not. The rules (issue 15 and design §5):
//! - `domain` is the leaf: it names nothing of the crate but itself;
//! - `db` (the repositories) names only `domain` (and itself);
//! - `api` (poem only) and `cli` (the binary's commands, which name the library as `shiren::`) never name `db` nor
//!   `sea_orm`: they go through the services (`operator` for the console, the admin API and the CLI).
//!
//! A path counts wherever code names it (`use crate::x`, `crate::x::f()`, `use crate::{x, y}`), not in comments or
//! string literals.
use std::path::{Path, PathBuf};

/// The first-level modules of the crate a piece of source code names through `crate::`.
#[cfg(test)]
fn crate_modules_named(source: &str) -> Vec<String> {
    modules_named(source, "crate::")
}

/// The first-level modules a piece of source code names through `root` (`crate::`, or `shiren::` in the binary).
fn modules_named(source: &str, root: &str) -> Vec<String> {
    let code = strip_comments_and_strings(source);
    let mut named = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find(root) {
        let before = rest[..i].chars().next_back();
        rest = &rest[i + root.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // e.g. `my_crate::`
        }
        let after = rest.trim_start();
        if let Some(group) = after.strip_prefix('{') {
            for item in top_level_items(group) {
                let name = ident_at(item.trim_start());
                if !name.is_empty() {
                    named.push(name);
                }
            }
        } else {
            let name = ident_at(after);
            if !name.is_empty() {
                named.push(name);
            }
        }
    }
    named
}

/// The comma-separated items of a `{…}` group (`group` starts after its `{`), nested groups kept whole.
fn top_level_items(group: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                items.push(&group[start..i]);
                return items;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&group[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&group[start..]);
    items
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The source with comments and string/char literals blanked out (kept as spaces, so positions stay comparable).
fn strip_comments_and_strings(source: &str) -> String {
    let b: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0usize;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && raw_string_start(&b, i).is_some()
        {
            let (hashes, body) = raw_string_start(&b, i).unwrap_or((0, i));
            i = body;
            loop {
                if i >= b.len() {
                    break;
                }
                if b[i] == '"' && (1..=hashes).all(|k| b.get(i + k) == Some(&'#')) {
                    i += 1 + hashes;
                    break;
                }
                i += 1;
            }
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                i += if b[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' && char_literal_len(&b, i).is_some() {
            i += char_literal_len(&b, i).unwrap_or(1);
            out.push(' ');
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// At `r"` or `r#…#"` (not part of an identifier): the number of `#` and where the body starts.
fn raw_string_start(b: &[char], i: usize) -> Option<(usize, usize)> {
    if i > 0 && (b[i - 1].is_alphanumeric() || b[i - 1] == '_') {
        return None;
    }
    let mut j = i + 1;
    let mut hashes = 0;
    while b.get(j) == Some(&'#') {
        hashes += 1;
        j += 1;
    }
    (b.get(j) == Some(&'"')).then_some((hashes, j + 1))
}

/// A char literal at `i` (`'a'`, `'\n'`, `'\u{1F600}'`), not a lifetime: its length.
fn char_literal_len(b: &[char], i: usize) -> Option<usize> {
    if b.get(i + 1) == Some(&'\\') {
        let close = (i + 2..b.len().min(i + 12)).find(|&j| b[j] == '\'')?;
        return Some(close - i + 1);
    }
    (b.get(i + 2) == Some(&'\'')).then_some(3)
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// Which first-level modules of the crate a layer may name.
type Allowed = dyn Fn(&str) -> bool;

/// The violations of the rules in the crate's `src/`: "FILE names crate::MODULE".
fn violations(src: &Path) -> Vec<String> {
    let rules: [(&str, &str, &Allowed); 4] = [
        ("domain", "crate::", &|m| m == "domain"),
        ("db", "crate::", &|m| m == "db" || m == "domain"),
        ("api", "crate::", &|m| m != "db"),
        ("cli", "shiren::", &|m| m != "db"),
    ];
    let mut found = Vec::new();
    for (layer, root, allowed) in rules {
        for file in rust_files(&src.join(layer)) {
            let Ok(source) = std::fs::read_to_string(&file) else {
                found.push(format!("{} cannot be read", file.display()));
                continue;
            };
            let shown = file
                .strip_prefix(src)
                .unwrap_or(&file)
                .display()
                .to_string();
            for m in modules_named(&source, root) {
                if !allowed(&m) {
                    found.push(format!("src/{shown} names {root}{m}"));
                }
            }
            if matches!(layer, "api" | "cli") && !modules_named(&source, "sea_orm::").is_empty() {
                found.push(format!("src/{shown} names sea_orm"));
            }
            if layer == "domain" && climbs_out_of_domain(&file, &source) {
                found.push(format!(
                    "{} reaches outside domain through super::",
                    file.display()
                ));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// Whether a file under `domain/` uses `super::` to reach the crate root (in `domain/mod.rs`, or `super::super` in a
/// domain module).
fn climbs_out_of_domain(file: &Path, source: &str) -> bool {
    let code = strip_comments_and_strings(source);
    let is_mod = file.file_name().is_some_and(|n| n == "mod.rs");
    (is_mod && code.contains("super::")) || code.contains("super::super")
}

#[test]
fn the_layers_only_name_what_they_may() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let v = violations(&src);
    assert!(
        v.is_empty(),
        "imports against the arrows (design §5):\n  {}",
        v.join("\n  ")
    );
}

#[test]
fn names_are_found_in_code_only() {
    let src = r##"
        //! see crate::db for the tables
        use crate::domain::state::State; // not crate::face
        use crate::{db, domain::{x, y}, face};
        /* crate::net */ let s = "crate::storage"; let r = r#"crate::media"#; let c = '"';
        let f = crate::billing::f(); let g = my_crate::cli::run();
        fn f<'a>(x: &'a str) -> &'a str { crate::authority::x(x) }
    "##;
    assert_eq!(
        crate_modules_named(src),
        ["domain", "db", "domain", "face", "billing", "authority"]
    );
}

#[test]
fn a_violation_is_reported_with_its_file() {
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in [
        ("domain/mod.rs", "pub mod a;\nuse super::x;\n"),
        ("domain/a.rs", "use crate::domain::b;\n"),
        ("db/x.rs", "use crate::{domain, face::compare};\n"),
        (
            "api/h.rs",
            "fn f() { crate::db::ping(); crate::certify::go(); }\n",
        ),
        (
            "cli/c.rs",
            "use shiren::{db, operator};\nuse sea_orm::Database;\n",
        ),
    ] {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let v = violations(dir.path());
    assert_eq!(v.len(), 5, "{v:?}");
    assert!(v
        .iter()
        .any(|s| s.ends_with("src/cli/c.rs names shiren::db")));
    assert!(v.iter().any(|s| s.ends_with("src/cli/c.rs names sea_orm")));
    assert!(v
        .iter()
        .any(|s| s.ends_with("src/db/x.rs names crate::face")));
    assert!(v
        .iter()
        .any(|s| s.ends_with("src/api/h.rs names crate::db")));
    assert!(v.iter().any(|s| s.contains("reaches outside domain")));
}
