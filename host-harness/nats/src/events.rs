//! wasmCloud's lattice events, as a v1.9 host publishes them after a link
//! or config request succeeds: CloudEvents 1.0 JSON on
//! `wasmbus.evt.{lattice}.{name}` (`linkdef_set`, `linkdef_deleted`,
//! `config_set`, `config_deleted`), `data` with its keys in sorted order.
//! Tools such as wadm follow these; `spec-host serve` also reads
//! `linkdef_set`/`linkdef_deleted` to know which puts a lattice
//! acknowledged, whoever answered them (see `serve::guard`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use spec_model::Link;

use super::subjects;
use spec_embed::backend::error_chain;

/// `linkdef_set`.
pub const LINKDEF_SET: &str = "linkdef_set";
/// `linkdef_deleted`.
pub const LINKDEF_DELETED: &str = "linkdef_deleted";
/// `config_set`.
pub const CONFIG_SET: &str = "config_set";
/// `config_deleted`.
pub const CONFIG_DELETED: &str = "config_deleted";

/// A CloudEvent as wasmCloud writes them.
#[derive(Debug, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Always `1.0`.
    pub specversion: String,
    /// A fresh UUID.
    pub id: String,
    /// `com.wasmcloud.lattice.{name}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The publishing host's id.
    pub source: String,
    /// `application/json`.
    pub datacontenttype: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// The event's data (keys sorted).
    pub data: BTreeMap<String, Value>,
}

/// The data of `linkdef_set` for `link`.
pub fn linkdef_set(link: &Link) -> BTreeMap<String, Value> {
    let mut data = BTreeMap::new();
    data.insert("source_id".into(), link.source_id.clone().into());
    data.insert("target".into(), link.target.clone().into());
    data.insert("name".into(), link.name.clone().into());
    data.insert("wit_namespace".into(), link.wit_namespace.clone().into());
    data.insert("wit_package".into(), link.wit_package.clone().into());
    data.insert("interfaces".into(), link.interfaces.clone().into());
    data.insert("source_config".into(), link.source_config.clone().into());
    data.insert("target_config".into(), link.target_config.clone().into());
    data
}

/// The link a `linkdef_set` event's data describes.
pub fn link_of(data: &BTreeMap<String, Value>) -> Option<Link> {
    let text = |k: &str| data.get(k)?.as_str().map(str::to_string);
    let list = |k: &str| -> Option<Vec<String>> {
        data.get(k)?
            .as_array()?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect()
    };
    Some(Link {
        source_id: text("source_id")?,
        target: text("target")?,
        name: text("name")?,
        wit_namespace: text("wit_namespace")?,
        wit_package: text("wit_package")?,
        interfaces: list("interfaces")?,
        source_config: list("source_config").unwrap_or_default(),
        target_config: list("target_config").unwrap_or_default(),
    })
}

/// The data of `linkdef_deleted`: the request's fields, and the removed
/// link's target and interfaces when one was removed.
pub fn linkdef_deleted(
    source_id: &str,
    name: &str,
    wit_namespace: &str,
    wit_package: &str,
    removed: Option<&Link>,
) -> BTreeMap<String, Value> {
    let mut data = BTreeMap::new();
    data.insert("source_id".into(), source_id.into());
    data.insert("name".into(), name.into());
    data.insert("wit_namespace".into(), wit_namespace.into());
    data.insert("wit_package".into(), wit_package.into());
    if let Some(link) = removed {
        data.insert("target".into(), link.target.clone().into());
        data.insert("interfaces".into(), link.interfaces.clone().into());
    }
    data
}

/// The data of `config_set` / `config_deleted`.
pub fn config(name: &str) -> BTreeMap<String, Value> {
    let mut data = BTreeMap::new();
    data.insert("config_name".into(), name.into());
    data
}

/// Publishes event `name` with `data` from host `source`. A failure is
/// logged, not returned: the request it reports on has succeeded.
pub async fn publish(
    client: &async_nats::Client,
    lattice: &str,
    source: &str,
    name: &str,
    data: BTreeMap<String, Value>,
) {
    let event = CloudEvent {
        specversion: "1.0".into(),
        id: uuid::Uuid::new_v4().to_string(),
        kind: format!("com.wasmcloud.lattice.{name}"),
        source: source.to_string(),
        datacontenttype: "application/json".into(),
        time: humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string(),
        data,
    };
    let body = match serde_json::to_vec(&event) {
        Ok(body) => body,
        Err(e) => {
            tracing::warn!(event = name, error = %e, "cannot encode the event");
            return;
        }
    };
    if let Err(e) = client
        .publish(subjects::event(lattice, name), body.into())
        .await
    {
        tracing::warn!(event = name, error = %error_chain(&e), "cannot publish the event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_survives_its_event() {
        let mut link = Link::new("a", "b", "wasi", "keyvalue", &["store", "atomics"]);
        link.target_config = vec!["cfg".into()];
        assert_eq!(link_of(&linkdef_set(&link)), Some(link));
        // Keys come out sorted, as wasmCloud's serde_json writes them.
        let text = serde_json::to_string(&linkdef_set(&Link::new("a", "b", "w", "k", &["s"])))
            .unwrap_or_default();
        assert!(
            text.starts_with(r#"{"interfaces":["s"],"name":"default","source_config":[]"#),
            "{text}"
        );
    }
}
