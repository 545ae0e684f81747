//! Named configurations in `CONFIGDATA_{lattice}`, as wasmCloud keeps them:
//! each a JSON object of strings under its name. Secret references
//! (`SECRET…` names) are entries here too; their values are references,
//! never secrets, and this host never resolves them.

use std::collections::HashMap;

use async_nats::jetstream::kv;
use bytes::Bytes;

use spec_embed::backend::{check_key, error_chain, BackendError};

/// wasmCloud's reply when a config payload is not a map of strings.
pub const NOT_A_MAP: &str = "config data should be a map of string -> string";

/// Why a config request failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The value is not a JSON object of strings.
    #[error("{NOT_A_MAP}")]
    NotAMap(#[source] serde_json::Error),
    /// The name is not a valid key.
    #[error("{0}")]
    Name(#[source] BackendError),
    /// The bucket failed.
    #[error("config bucket: {0}")]
    Store(String),
}

/// The map a config value holds, checked.
pub fn parse(value: &[u8]) -> Result<HashMap<String, String>, ConfigError> {
    serde_json::from_slice(value).map_err(ConfigError::NotAMap)
}

/// Stores `value` (checked to be a map of strings) under `name`, as given.
pub async fn put(bucket: &kv::Store, name: &str, value: &[u8]) -> Result<u64, ConfigError> {
    check_key(name).map_err(ConfigError::Name)?;
    parse(value)?;
    bucket
        .put(name, Bytes::copy_from_slice(value))
        .await
        .map_err(|e| ConfigError::Store(error_chain(&e)))
}

/// The map stored under `name`, if any.
pub async fn get(
    bucket: &kv::Store,
    name: &str,
) -> Result<Option<HashMap<String, String>>, ConfigError> {
    check_key(name).map_err(ConfigError::Name)?;
    match bucket.get(name).await {
        Ok(Some(value)) => parse(&value).map(Some),
        Ok(None) => Ok(None),
        Err(e) => Err(ConfigError::Store(error_chain(&e))),
    }
}

/// Removes `name` with a purge, as wasmCloud does; absent is fine.
pub async fn delete(bucket: &kv::Store, name: &str) -> Result<(), ConfigError> {
    check_key(name).map_err(ConfigError::Name)?;
    bucket
        .purge(name)
        .await
        .map_err(|e| ConfigError::Store(error_chain(&e)))
}
