//! [`ProviderNotify`] over NATS, in wasmCloud's wire format.
//!
//! A new link goes to `wasmbus.rpc.{lattice}.{provider-key}.linkdefs.put`,
//! a removed one to `wasmbus.rpc.{lattice}.{provider-id}.linkdefs.del`. The
//! payload is wasmCloud's `InterfaceLinkDefinition` JSON, with the link's
//! config names resolved to string maps from `CONFIGDATA_{lattice}` (each
//! name's value is a JSON object of strings; maps merge in list order, a
//! later one wins). Secret references (`SECRET…` names) are not resolved:
//! they are left out of the config maps and `source_secrets` /
//! `target_secrets` are sent as `null`. The link itself is always delivered.
//! The configs a link names are read once each and all at once; a link
//! stored with more than [`MAX_CONFIG_NAMES`] of them (only a value written
//! straight into the bucket can have that many) is not delivered, and no
//! config is read for it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream::kv;
use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::subjects;
use spec_embed::backend::{error_chain, NotifyError, ProviderNotify};
use spec_model::Link;
use subjects::MAX_CONFIG_NAMES;

/// A provider running on this host: its id and the key its link puts are
/// addressed to (wasmCloud uses the provider's xkey; by default the id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalProvider {
    /// Provider id.
    pub id: String,
    /// Subject token for `linkdefs.put`.
    pub key: String,
}

impl FromStr for LocalProvider {
    type Err = String;

    /// `ID` or `ID=KEY`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (id, key) = match s.split_once('=') {
            Some((id, key)) => (id, key),
            None => (s, s),
        };
        let token_ok = |t: &str| {
            !t.is_empty()
                && !t.contains(|c: char| c.is_whitespace() || matches!(c, '.' | '*' | '>'))
        };
        if !token_ok(id) || !token_ok(key) {
            return Err(format!(
                "provider {s:?}: id and key must be non-empty NATS subject tokens (no '.', '*', '>' or spaces)"
            ));
        }
        Ok(LocalProvider {
            id: id.to_string(),
            key: key.to_string(),
        })
    }
}

/// wasmCloud's `InterfaceLinkDefinition` (wasmcloud-core), as sent to
/// providers. Borrowed from the [`Link`] when sent; owned when decoded from
/// a delivery seen on the lattice (the UI's delivery feed).
#[derive(Debug, Serialize, Deserialize)]
pub struct InterfaceLinkDefinition<'a> {
    source_id: Cow<'a, str>,
    target: Cow<'a, str>,
    #[serde(default = "default_name")]
    name: Cow<'a, str>,
    wit_namespace: Cow<'a, str>,
    wit_package: Cow<'a, str>,
    #[serde(default)]
    interfaces: Cow<'a, [String]>,
    #[serde(default)]
    source_config: HashMap<String, String>,
    #[serde(default)]
    target_config: HashMap<String, String>,
    /// Encrypted secrets in wasmCloud; never resolved here.
    #[serde(default)]
    source_secrets: Option<Vec<u8>>,
    /// Encrypted secrets in wasmCloud; never resolved here.
    #[serde(default)]
    target_secrets: Option<Vec<u8>>,
}

fn default_name() -> Cow<'static, str> {
    Cow::Borrowed(spec_model::DEFAULT_LINK_NAME)
}

impl InterfaceLinkDefinition<'static> {
    /// A `linkdefs.put`/`linkdefs.del` payload, decoded.
    pub fn decode(payload: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(payload)
    }
}

impl InterfaceLinkDefinition<'_> {
    /// The link this definition carries. Its config *names* are not on the
    /// wire (the maps hold resolved values), so the link names none.
    pub fn link(&self) -> Link {
        Link {
            source_id: self.source_id.to_string(),
            target: self.target.to_string(),
            name: self.name.to_string(),
            wit_namespace: self.wit_namespace.to_string(),
            wit_package: self.wit_package.to_string(),
            interfaces: self.interfaces.to_vec(),
            source_config: Vec::new(),
            target_config: Vec::new(),
        }
    }
}

/// Publishes wasmCloud link definitions on a lattice: the one place that
/// resolves a link's configs and writes `linkdefs.put` / `linkdefs.del`,
/// for deliveries to this host's providers ([`NatsNotifier`]) and for the
/// lattice-wide, id-addressed messages a `link.put`/`link.del` answer
/// sends (as wasmCloud v1.9 does).
#[derive(Clone)]
pub struct LinkDefs {
    client: async_nats::Client,
    lattice: String,
    configs: kv::Store,
    timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
enum ConfigError {
    #[error("reading config {name:?}")]
    Read {
        name: String,
        #[source]
        source: kv::EntryError,
    },
    #[error("config {name:?} is not a JSON object of strings")]
    Decode {
        name: String,
        #[source]
        source: serde_json::Error,
    },
}

impl LinkDefs {
    /// Link definitions on `lattice`, configs from `configs`.
    pub fn new(
        client: async_nats::Client,
        lattice: &str,
        configs: kv::Store,
        timeout: Duration,
    ) -> Self {
        LinkDefs {
            client,
            lattice: lattice.to_string(),
            configs,
            timeout,
        }
    }

    /// Reads every config `link` names, each once and all at once (a
    /// link over [`MAX_CONFIG_NAMES`] names, which only a value written
    /// straight into the bucket can carry, is refused without a read), and
    /// merges each side's in order.
    async fn resolve_link(
        &self,
        link: &Link,
    ) -> Result<(HashMap<String, String>, HashMap<String, String>), NotifyError> {
        let named = link.source_config.len() + link.target_config.len();
        if named > MAX_CONFIG_NAMES {
            return Err(NotifyError::DeliveryFailed(format!(
                "the link names {named} configurations; at most {MAX_CONFIG_NAMES} are read for a delivery"
            )));
        }
        let names: std::collections::BTreeSet<&String> = link
            .source_config
            .iter()
            .chain(&link.target_config)
            .filter(|n| !n.starts_with(subjects::SECRET_PREFIX))
            .collect();
        let reads = names.into_iter().map(|name| async move {
            let value = self
                .configs
                .get(name.as_str())
                .await
                .map_err(|source| ConfigError::Read {
                    name: name.clone(),
                    source,
                });
            (name.clone(), value)
        });
        let mut values = HashMap::new();
        for (name, value) in futures::future::join_all(reads).await {
            let value = value.map_err(|e| NotifyError::DeliveryFailed(error_chain(&e)))?;
            values.insert(name, value);
        }
        let merge = |names: &[String]| {
            Self::merge(names, &values).map_err(|e| NotifyError::DeliveryFailed(error_chain(&e)))
        };
        Ok((merge(&link.source_config)?, merge(&link.target_config)?))
    }

    /// Merges the named configs in order from what was read; a missing
    /// config contributes nothing (it is logged), a corrupt one fails the
    /// delivery.
    fn merge(
        names: &[String],
        values: &HashMap<String, Option<Bytes>>,
    ) -> Result<HashMap<String, String>, ConfigError> {
        let mut merged = HashMap::new();
        for name in names
            .iter()
            .filter(|n| !n.starts_with(subjects::SECRET_PREFIX))
        {
            let Some(Some(value)) = values.get(name) else {
                tracing::warn!(config = %name, "link names a config that does not exist; delivered without it");
                continue;
            };
            let map: HashMap<String, String> =
                serde_json::from_slice(value).map_err(|source| ConfigError::Decode {
                    name: name.clone(),
                    source,
                })?;
            merged.extend(map);
        }
        Ok(merged)
    }

    /// Hands a message to the connection. Core NATS is at most once, as
    /// wasmCloud's own link messages are: "delivered" means the client took
    /// it (no flush per message, which would cost a round trip each and
    /// serialize the table's deliveries); it fails when the connection
    /// cannot take it within the timeout (closed, or buffer full).
    async fn publish(&self, subject: String, payload: Vec<u8>) -> Result<(), NotifyError> {
        let send = self.client.publish(subject.clone(), Bytes::from(payload));
        match tokio::time::timeout(self.timeout, send).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(NotifyError::DeliveryFailed(format!(
                "publishing to {subject}: {}",
                error_chain(&e)
            ))),
            Err(_) => Err(NotifyError::DeliveryFailed(format!(
                "publishing to {subject}: not taken within {:?}",
                self.timeout
            ))),
        }
    }

    fn definition(
        link: &Link,
        source_config: HashMap<String, String>,
        target_config: HashMap<String, String>,
    ) -> InterfaceLinkDefinition<'_> {
        InterfaceLinkDefinition {
            source_id: Cow::Borrowed(&link.source_id),
            target: Cow::Borrowed(&link.target),
            name: Cow::Borrowed(&link.name),
            wit_namespace: Cow::Borrowed(&link.wit_namespace),
            wit_package: Cow::Borrowed(&link.wit_package),
            interfaces: Cow::Borrowed(&link.interfaces),
            source_config,
            target_config,
            source_secrets: None,
            target_secrets: None,
        }
    }

    /// Sends `link` with its configs resolved to
    /// `wasmbus.rpc.{lattice}.{token}.linkdefs.put`.
    pub async fn put(&self, token: &str, link: &Link) -> Result<(), NotifyError> {
        let (source_config, target_config) = self.resolve_link(link).await?;
        let payload = encode(&Self::definition(link, source_config, target_config))?;
        self.publish(subjects::link_put(&self.lattice, token), payload)
            .await
    }

    /// Sends `link` (configs empty) to
    /// `wasmbus.rpc.{lattice}.{token}.linkdefs.del`.
    pub async fn delete(&self, token: &str, link: &Link) -> Result<(), NotifyError> {
        // A removed link's configs may be gone already and a provider has no
        // use for them: deletes carry empty maps, as wasmCloud's do.
        let payload = encode(&Self::definition(link, HashMap::new(), HashMap::new()))?;
        self.publish(subjects::link_del(&self.lattice, token), payload)
            .await
    }
}

fn encode(def: &InterfaceLinkDefinition<'_>) -> Result<Vec<u8>, NotifyError> {
    serde_json::to_vec(def)
        .map_err(|e| NotifyError::DeliveryFailed(format!("encoding the link: {e}")))
}

/// Publishes link changes to the providers of this host.
#[derive(Clone)]
pub struct NatsNotifier {
    defs: LinkDefs,
    providers: Vec<LocalProvider>,
}

impl NatsNotifier {
    /// A notifier for these local providers.
    pub fn new(defs: LinkDefs, providers: Vec<LocalProvider>) -> Self {
        NatsNotifier { defs, providers }
    }

    fn provider(&self, id: &str) -> Result<&LocalProvider, NotifyError> {
        self.providers
            .iter()
            .find(|p| p.id == id)
            .ok_or_else(|| NotifyError::NoSuchProvider(id.to_string()))
    }
}

#[async_trait]
impl ProviderNotify for NatsNotifier {
    fn local_providers(&self) -> Vec<String> {
        self.providers.iter().map(|p| p.id.clone()).collect()
    }

    async fn link_put(&self, provider_id: &str, link: &Link) -> Result<(), NotifyError> {
        let provider = self.provider(provider_id)?;
        self.defs.put(&provider.key, link).await?;
        tracing::info!(provider = provider_id, source = %link.source_id, target = %link.target, name = %link.name, "link put delivered");
        Ok(())
    }

    async fn link_delete(&self, provider_id: &str, link: &Link) -> Result<(), NotifyError> {
        let provider = self.provider(provider_id)?;
        self.defs.delete(&provider.id, link).await?;
        tracing::info!(provider = provider_id, source = %link.source_id, target = %link.target, name = %link.name, "link delete delivered");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_decodes_back_to_its_link_without_config_names() {
        let mut link = Link::new("app", "kvredis", "wasi", "keyvalue", &["store", "atomics"]);
        link.target_config = vec!["redis-url".into()];
        let resolved = HashMap::from([("url".to_string(), "redis://x".to_string())]);
        let bytes = encode(&LinkDefs::definition(&link, HashMap::new(), resolved)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains(r#""target_config":{"url":"redis://x"}"#),
            "{text}"
        );
        assert!(text.contains(r#""source_secrets":null"#), "{text}");
        let decoded = InterfaceLinkDefinition::decode(&bytes).unwrap();
        link.target_config.clear();
        assert_eq!(decoded.link(), link);
    }

    #[test]
    fn a_definition_without_name_or_configs_takes_wasmcloud_s_defaults() {
        let bytes =
            br#"{"source_id":"a","target":"b","wit_namespace":"wasi","wit_package":"http"}"#;
        let link = InterfaceLinkDefinition::decode(bytes).unwrap().link();
        assert_eq!(link.name, spec_model::DEFAULT_LINK_NAME);
        assert!(link.interfaces.is_empty());
        assert!(InterfaceLinkDefinition::decode(b"{\"source_id\":1}").is_err());
    }
}
