//! The documents a user reads first stay readable: sizes a person can
//! read (an edit once interleaved a paragraph between every character of
//! README, 49 MB, and every test still passed), and relative links that
//! lead somewhere.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const DOCS: [&str; 4] = [
    "README.md",
    "docs/BENCHMARKS.md",
    "docs/RELIABILITY.md",
    "deploy/README.md",
];

#[test]
fn documents_are_of_a_size_a_person_reads() {
    for doc in DOCS {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        assert!(text.len() < 256 * 1024, "{doc} is {} bytes", text.len());
        // A paragraph repeated many times over is an edit gone wrong.
        let mut seen = std::collections::HashMap::new();
        for paragraph in text.split("\n\n").filter(|p| p.len() > 200) {
            *seen.entry(paragraph).or_insert(0) += 1;
        }
        if let Some((p, n)) = seen.iter().find(|(_, n)| **n > 2) {
            panic!("{doc} repeats a paragraph {n} times: {:.80}", p);
        }
    }
}

/// The targets of `[text](target)` links in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("](") {
        rest = &rest[i + 2..];
        if let Some(end) = rest.find(')') {
            out.push(rest[..end].to_string());
        }
    }
    out
}

#[test]
fn relative_links_lead_to_files_that_exist() {
    for doc in DOCS {
        let path = root().join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let dir = path.parent().unwrap();
        for target in link_targets(&text) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap_or_default();
            assert!(
                dir.join(file).exists(),
                "{doc} links to {target}, which does not exist"
            );
        }
    }
}
