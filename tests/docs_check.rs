//! The docs check, part two. Part one is in `src/lib.rs`: every file of
//! `docs/` is included there under `#[cfg(doctest)]`, so each of its `rust`
//! blocks is compiled and run as a doctest. This file checks what rustdoc
//! cannot: that no file of `docs/` was left out of `src/lib.rs`, that every
//! code fence names its language (an unnamed fence would be taken for
//! Rust), that a block that is not run says why, and that the links between
//! the documents point at files and headings that exist.
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The markdown files of `docs/`, sorted.
fn doc_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no docs/*.md found");
    files
}

/// `docs/*.md` and the README: every document the checks apply to.
fn all_documents() -> Vec<PathBuf> {
    let mut v = doc_files();
    v.push(root().join("README.md"));
    v
}

fn name(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

#[test]
fn every_docs_file_is_compiled_as_doctests() {
    let lib = fs::read_to_string(root().join("src/lib.rs")).unwrap();
    let missing: Vec<String> = doc_files()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|f| !lib.contains(&format!("include_str!(\"../docs/{f}\")")))
        .collect();
    assert!(
        missing.is_empty(),
        "add these to `mod docs` in src/lib.rs so their rust blocks are tested: {missing:?}"
    );
}

/// One fenced code block: the line of its opening fence, its info string
/// and its lines.
struct Block {
    line: usize,
    info: String,
    body: Vec<String>,
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        if let Some(info) = t.strip_prefix("```") {
            match open.take() {
                None => {
                    open = Some(Block {
                        line: i + 1,
                        info: info.trim().to_string(),
                        body: Vec::new(),
                    })
                }
                Some(b) => out.push(b),
            }
        } else if let Some(b) = open.as_mut() {
            b.body.push(l.to_string());
        }
    }
    assert!(open.is_none(), "an unclosed code fence");
    out
}

/// Every fenced block of every document, with the document's name.
fn all_blocks() -> Vec<(String, Block)> {
    all_documents()
        .iter()
        .flat_map(|path| {
            let text = fs::read_to_string(path).unwrap();
            let file = name(path);
            blocks(&text).into_iter().map(move |b| (file.clone(), b))
        })
        .collect()
}

/// Languages of blocks that are not Rust.
const OTHER_LANGUAGES: &[&str] = &["sh", "text", "toml", "console"];

#[test]
fn every_fence_names_its_language_and_unrun_blocks_say_why() {
    let mut problems = Vec::new();
    for (file, b) in all_blocks() {
        let at = format!("{file}:{}", b.line);
        let attrs: Vec<&str> = b.info.split(',').map(str::trim).collect();
        let rust = attrs[0] == "rust" || attrs[0] == "compile_fail";
        if b.info.is_empty() {
            problems.push(format!(
                "{at}: fence without a language (rust, sh, text, ...)"
            ));
        } else if !rust && !OTHER_LANGUAGES.contains(&attrs[0]) {
            problems.push(format!("{at}: unknown fence language {:?}", b.info));
        }
        if rust && attrs.iter().any(|a| *a == "ignore" || *a == "no_run") {
            let first = b.body.iter().find(|l| !l.trim_start().starts_with("# "));
            let says_why = first.is_some_and(|l| {
                let l = l.trim();
                l.starts_with("// no_run:") || l.starts_with("// ignore:")
            });
            if !says_why {
                problems.push(format!(
                    "{at}: a `no_run`/`ignore` block must start with `// no_run: <why>` \
                     or `// ignore: <why>`"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A reader copies what the rendered page shows, and the page does not show
/// rustdoc's hidden `# ` lines: a `rust` block must compile without them, so
/// it may have none.
#[test]
fn rust_blocks_hide_no_lines() {
    let mut problems = Vec::new();
    for (file, b) in all_blocks() {
        let lang = b.info.split(',').next().unwrap_or("").trim();
        if lang != "rust" && lang != "compile_fail" {
            continue;
        }
        for (i, l) in b.body.iter().enumerate() {
            let t = l.trim_start();
            if t == "#" || t.starts_with("# ") {
                problems.push(format!(
                    "{file}:{}: hidden line {l:?}; show it, or write the block so it needs none",
                    b.line + 1 + i
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces
/// to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    let mut in_fence = false;
    let mut set = BTreeSet::new();
    for l in text.lines() {
        if l.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence && l.starts_with('#') {
            set.insert(slug(l.trim_start_matches('#')));
        }
    }
    set
}

/// The targets of inline links `[..](target)` that are not URLs.
fn local_links(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_fence = false;
    for l in text.lines() {
        if l.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        let mut rest = l;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn links_between_documents_resolve() {
    let mut problems = Vec::new();
    for path in all_documents() {
        let text = fs::read_to_string(&path).unwrap();
        let dir = path.parent().unwrap();
        for target in local_links(&text) {
            let (file, anchor) = match target.split_once('#') {
                Some((f, a)) => (f, Some(a)),
                None => (target.as_str(), None),
            };
            let file_path = if file.is_empty() {
                path.clone()
            } else {
                dir.join(file)
            };
            let Ok(linked) = fs::read_to_string(&file_path) else {
                if !file_path.exists() {
                    problems.push(format!("{}: link to missing {target}", name(&path)));
                }
                continue; // a directory or a non-text file
            };
            if let Some(a) = anchor {
                if !anchors(&linked).contains(a) {
                    problems.push(format!("{}: no heading for #{a} in {file}", name(&path)));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
