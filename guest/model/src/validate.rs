//! Input validation, done before anything is written or delivered.
//!
//! Ids follow wasmCloud's rules for component ids that become NATS subject
//! tokens and KV keys: `[-/_=.a-zA-Z0-9]`, no leading or trailing `.`, no
//! `..` (an empty token in a subject). Links need every field that routing
//! depends on.

use crate::error::SpecError;
use crate::link::{ComponentSpecification, Link};
use crate::prelude::*;

/// Checks a component id; `InvalidId` says which rule it breaks.
pub fn validate_id(id: &str) -> Result<(), SpecError> {
    if id.is_empty() {
        return Err(SpecError::InvalidId("id is empty".into()));
    }
    if let Some(c) = id.chars().find(|c| !is_id_char(*c)) {
        return Err(SpecError::InvalidId(format!(
            "id {:?} contains {c:?}; only [-/_=.a-zA-Z0-9] are allowed",
            shorten(id)
        )));
    }
    if id.starts_with('.') || id.ends_with('.') {
        return Err(SpecError::InvalidId(format!(
            "id {:?} starts or ends with '.'",
            shorten(id)
        )));
    }
    if id.contains("..") {
        return Err(SpecError::InvalidId(format!(
            "id {:?} contains '..'",
            shorten(id)
        )));
    }
    Ok(())
}

/// Checks a link: required fields non-empty (`InvalidLink` naming the field),
/// then its source and target as ids (`InvalidId` naming the field).
pub fn validate_link(link: &Link) -> Result<(), SpecError> {
    let required = [
        ("source_id", &link.source_id),
        ("target", &link.target),
        ("wit_namespace", &link.wit_namespace),
        ("wit_package", &link.wit_package),
    ];
    for (field, value) in required {
        if value.is_empty() {
            return Err(SpecError::InvalidLink(format!("{field} is empty")));
        }
    }
    if link.interfaces.is_empty() {
        return Err(SpecError::InvalidLink(
            "interfaces is empty: a link needs at least one".into(),
        ));
    }
    if let Some(pos) = link.interfaces.iter().position(String::is_empty) {
        return Err(SpecError::InvalidLink(format!(
            "interfaces[{pos}] is empty"
        )));
    }
    for (field, id) in [("source_id", &link.source_id), ("target", &link.target)] {
        validate_id(id).map_err(|e| match e {
            SpecError::InvalidId(m) => SpecError::InvalidId(format!("link {field}: {m}")),
            other => other,
        })?;
    }
    Ok(())
}

/// Checks every link of a spec.
pub fn validate_spec(spec: &ComponentSpecification) -> Result<(), SpecError> {
    spec.links.iter().try_for_each(validate_link)
}

fn is_id_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_' | '=' | '.')
}

/// Keeps error messages small when a caller sends a huge id.
fn shorten(id: &str) -> &str {
    const MAX: usize = 128;
    if id.len() <= MAX {
        return id;
    }
    // Back off to a char boundary so slicing cannot panic on multi-byte text.
    let mut end = MAX;
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    id.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;

    fn link() -> Link {
        Link {
            source_id: "src".into(),
            target: "tgt".into(),
            name: "default".into(),
            wit_namespace: "wasi".into(),
            wit_package: "keyvalue".into(),
            interfaces: vec!["store".into()],
            source_config: vec![],
            target_config: vec![],
        }
    }

    #[test]
    fn ids_follow_each_rule() {
        for ok in ["a", "http_keyvalue_counter", "a-b/c=d.e_F9", "x.y"] {
            assert_eq!(validate_id(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a b", "a:b", "é", ".a", "a.", "a..b", "a*"] {
            assert!(
                matches!(validate_id(bad), Err(SpecError::InvalidId(_))),
                "{bad}"
            );
        }
        let huge = "é".repeat(10_000);
        let Err(SpecError::InvalidId(msg)) = validate_id(&huge) else {
            panic!("huge id accepted")
        };
        assert!(msg.len() < 300);
    }

    #[test]
    fn links_name_the_failing_field() {
        assert_eq!(validate_link(&link()), Ok(()));
        type Breaker = fn(&mut Link);
        let cases: [(Breaker, &str); 6] = [
            (|l| l.source_id.clear(), "source_id"),
            (|l| l.target.clear(), "target"),
            (|l| l.wit_namespace.clear(), "wit_namespace"),
            (|l| l.wit_package.clear(), "wit_package"),
            (|l| l.interfaces.clear(), "interfaces"),
            (|l| l.interfaces.push(String::new()), "interfaces[1]"),
        ];
        for (break_it, field) in cases {
            let mut l = link();
            break_it(&mut l);
            match validate_link(&l) {
                Err(SpecError::InvalidLink(m)) => assert!(m.contains(field), "{m}"),
                other => panic!("{field}: {other:?}"),
            }
        }
        let mut l = link();
        l.target = "bad target".into();
        match validate_link(&l) {
            Err(SpecError::InvalidId(m)) => assert!(m.contains("target"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
