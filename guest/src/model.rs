//! The specification data model and its JSON form.
//!
//! The stored JSON must be byte-identical to what a wasmCloud host writes
//! (compact `serde_json` of its `ComponentSpecification`), so that a lattice
//! can mix hosts that use this plugin with hosts that do not. That is why the
//! field order of the structs below is part of the contract: serde writes the
//! fields in declaration order.

use serde::{Deserialize, Serialize};

/// wasmCloud's link name when none is given.
pub const DEFAULT_LINK_NAME: &str = "default";

/// An outbound link from one component to another (wasmCloud's `Link`).
///
/// Decoding: `name` defaults to `"default"`, the two config lists default to
/// empty, every other field is required; unknown fields are ignored so that
/// specs written by newer hosts still decode.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Link {
    /// Id of the component that makes the calls.
    pub source_id: String,
    /// Id of the component or provider that receives them.
    pub target: String,
    /// Link name; lets one source link one interface to several targets.
    #[serde(default = "default_link_name")]
    pub name: String,
    /// WIT namespace of the linked interfaces, e.g. `wasi`.
    pub wit_namespace: String,
    /// WIT package of the linked interfaces, e.g. `keyvalue`.
    pub wit_package: String,
    /// Interfaces of that package covered by the link.
    pub interfaces: Vec<String>,
    /// Names of configurations given to the source for this link.
    #[serde(default)]
    pub source_config: Vec<String>,
    /// Names of configurations given to the target for this link.
    #[serde(default)]
    pub target_config: Vec<String>,
}

/// What the lattice knows of one component: its code's URL and its links.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ComponentSpecification {
    /// Image reference or file URL; `""` when unknown.
    pub url: String,
    /// Outbound links, in the order they were put.
    #[serde(default)]
    pub links: Vec<Link>,
}

fn default_link_name() -> String {
    DEFAULT_LINK_NAME.to_string()
}

impl Link {
    /// Whether `self` and `other` share at least one interface.
    pub fn interfaces_overlap(&self, other: &Link) -> bool {
        self.interfaces.iter().any(|i| other.interfaces.contains(i))
    }
}

/// Encodes a spec as wasmCloud does: compact JSON, fields in declaration order.
pub fn encode_spec(spec: &ComponentSpecification) -> Vec<u8> {
    // Serialising these types cannot fail: every field is a string or a list
    // of plain structs (no maps with non-string keys, no custom Serialize),
    // and writing into a Vec<u8> has no I/O error. So the empty fallback is
    // unreachable; it only keeps this path free of panics.
    serde_json::to_vec(spec).unwrap_or_default()
}

/// Decodes a stored spec; the error text is serde_json's message.
///
/// serde_json bounds nesting depth (128), so hostile input cannot overflow
/// the stack; it only yields an error.
///
/// The lists are trimmed to their length: serde grows them by doubling, and
/// listing every spec of a large lattice keeps all of them in memory at once.
pub fn decode_spec(bytes: &[u8]) -> Result<ComponentSpecification, String> {
    let mut spec: ComponentSpecification =
        serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
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
