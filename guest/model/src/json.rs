//! wasmCloud's stored JSON for a component specification.
//!
//! The stored bytes must be identical to what a wasmCloud host writes
//! (compact `serde_json` of its `ComponentSpecification`), so that a lattice
//! can mix hosts that use this plugin with hosts that do not. Decoding is
//! lenient as wasmCloud's is: `links`, `name` and the config lists default
//! when absent, and unknown fields are ignored.

use crate::link::ComponentSpecification;
use crate::prelude::*;

/// wasmCloud's compact JSON of `spec`.
pub fn encode_spec(spec: &ComponentSpecification) -> Vec<u8> {
    // Serialising these types cannot fail: every field is a string or a list
    // of plain structs, and writing into a Vec<u8> has no I/O error. The
    // empty fallback is unreachable; it only keeps this path free of panics.
    serde_json::to_vec(spec).unwrap_or_default()
}

/// Decodes stored JSON; the decoder's message on failure.
pub fn decode_spec(bytes: &[u8]) -> Result<ComponentSpecification, String> {
    let mut spec: ComponentSpecification =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    // The table keeps decoded links for a long time: no spare capacity.
    spec.links.shrink_to_fit();
    for link in &mut spec.links {
        link.interfaces.shrink_to_fit();
        link.source_config.shrink_to_fit();
        link.target_config.shrink_to_fit();
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::ToString;
    use std::vec;

    const GOLDEN: &str = r#"{"url":"ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0","links":[{"source_id":"http_keyvalue_counter","target":"kvredis","name":"default","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["atomics","store"],"source_config":[],"target_config":["redis-url","SECRET_redis_password"]},{"source_id":"http_keyvalue_counter","target":"blobstore-fs","name":"archive","wit_namespace":"wasi","wit_package":"blobstore","interfaces":["blobstore"],"source_config":["root-path"],"target_config":[]}]}"#;

    #[test]
    fn golden_round_trips_byte_for_byte() {
        let spec = decode_spec(GOLDEN.as_bytes()).expect("golden decodes");
        assert_eq!(spec.links.len(), 2);
        assert_eq!(spec.links[1].name, "archive");
        assert_eq!(encode_spec(&spec), GOLDEN.as_bytes());
    }

    #[test]
    fn defaults_fill_name_configs_and_links() {
        let spec = decode_spec(br#"{"url":"u"}"#).expect("decodes");
        assert_eq!(
            spec,
            ComponentSpecification {
                url: "u".into(),
                links: vec![]
            }
        );

        let spec = decode_spec(
            br#"{"url":"u","links":[{"source_id":"a","target":"b","wit_namespace":"wasi","wit_package":"kv","interfaces":["store"]}]}"#,
        )
        .expect("decodes");
        let link = &spec.links[0];
        assert_eq!(link.name, "default");
        assert!(link.source_config.is_empty());
        assert!(link.target_config.is_empty());
        assert_eq!(
            String::from_utf8(encode_spec(&spec)).expect("utf8"),
            r#"{"url":"u","links":[{"source_id":"a","target":"b","name":"default","wit_namespace":"wasi","wit_package":"kv","interfaces":["store"],"source_config":[],"target_config":[]}]}"#
        );
    }

    #[test]
    fn unknown_fields_are_tolerated() {
        let spec = decode_spec(
            br#"{"url":"u","extra":{"x":[1,2]},"links":[{"source_id":"a","target":"b","wit_namespace":"wasi","wit_package":"kv","interfaces":["store"],"future_field":true}]}"#,
        )
        .expect("decodes");
        assert_eq!(spec.links.len(), 1);
    }

    #[test]
    fn missing_required_fields_fail() {
        for field in [
            "source_id",
            "target",
            "wit_namespace",
            "wit_package",
            "interfaces",
        ] {
            let mut value = serde_json::json!({
                "source_id": "a", "target": "b", "wit_namespace": "wasi",
                "wit_package": "kv", "interfaces": ["store"]
            });
            if let Some(map) = value.as_object_mut() {
                map.remove(field);
            }
            let doc = serde_json::json!({ "url": "u", "links": [value] }).to_string();
            let err = decode_spec(doc.as_bytes()).expect_err(field);
            assert!(err.contains(field), "{err}");
        }
        assert!(decode_spec(br#"{"links":[]}"#).is_err(), "url is required");
    }

    #[test]
    fn garbage_and_deep_nesting_fail_without_panicking() {
        assert!(decode_spec(b"").is_err());
        assert!(decode_spec(b"\xff\xfe").is_err());
        assert!(decode_spec(b"not json").is_err());
        let deep = "[".repeat(100_000);
        assert!(decode_spec(deep.as_bytes()).is_err());
    }
}
