//! wasmCloud's config control protocol: `wasmbus.ctl.v1.{lattice}.config.
//! put|get|del.{name}`, in queue group `wasmbus.ctl.v1.{lattice}.config`,
//! with v1.9's payloads and replies, so `wash config put/get/del` work on a
//! lattice of spec-hosts alone:
//!
//! | request | payload | reply |
//! |---|---|---|
//! | `config.put.{name}` | JSON object of strings | "successfully put config"; a bad payload: "config data should be a map of string -> string" |
//! | `config.get.{name}` | none | `response`: the map; absent: success with "Configuration not found" |
//! | `config.del.{name}` | none | "successfully deleted config" (a purge; absent is fine) |
//!
//! A subject of any other shape (e.g. a name with a `.`) is answered
//! "unsupported subject". Puts and deletes publish `config_set` /
//! `config_deleted` events, as v1.9 does.

use std::collections::HashMap;

use super::ctl::{failure, CtlResponse, Handled};
use super::Service;
use spec_nats::configs::{self, ConfigError};
use spec_nats::events;

/// A config request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigOp {
    /// `config.put.{name}`
    Put(String),
    /// `config.get.{name}`
    Get(String),
    /// `config.del.{name}`
    Del(String),
}

impl ConfigOp {
    /// Its method name in metrics and logs.
    pub fn method(&self) -> &'static str {
        match self {
            ConfigOp::Put(_) => "config.put",
            ConfigOp::Get(_) => "config.get",
            ConfigOp::Del(_) => "config.del",
        }
    }

    /// The request a subject names; `None` for any other shape.
    /// `prefix` is [`spec_nats::subjects::ctl_config_prefix`] of the lattice.
    pub fn from_subject(prefix: &str, subject: &str) -> Option<ConfigOp> {
        let rest = subject.strip_prefix(prefix)?.strip_prefix('.')?;
        let (op, name) = rest.split_once('.')?;
        if name.is_empty() || name.contains('.') {
            return None;
        }
        let name = name.to_string();
        match op {
            "put" => Some(ConfigOp::Put(name)),
            "get" => Some(ConfigOp::Get(name)),
            "del" => Some(ConfigOp::Del(name)),
            _ => None,
        }
    }

    /// Name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            ConfigOp::Put(_) => "config.put",
            ConfigOp::Get(_) => "config.get",
            ConfigOp::Del(_) => "config.del",
        }
    }
}

/// The reply to a config subject of no known shape.
pub fn unsupported() -> Handled {
    Handled::from(failure("unsupported subject".to_string()))
}

/// Answers one config request.
pub async fn handle(service: &Service, op: ConfigOp, payload: &[u8]) -> Handled {
    let bucket = &service.lattice.configs;
    match op {
        ConfigOp::Put(name) => match configs::put(bucket, &name, payload).await {
            Ok(_) => {
                service
                    .event(events::CONFIG_SET, events::config(&name))
                    .await;
                Handled::from(CtlResponse::<()>::ok("successfully put config", None))
            }
            Err(e @ ConfigError::NotAMap(_)) => Handled::from(failure(e.to_string())),
            Err(e) => Handled::from(failure(format!("unable to store config data: {e}"))),
        },
        ConfigOp::Get(name) => match configs::get(bucket, &name).await {
            Ok(Some(map)) => Handled::from(CtlResponse::ok("", Some(map))),
            Ok(None) => Handled::from(CtlResponse::<HashMap<String, String>>::ok(
                "Configuration not found",
                None,
            )),
            Err(e) => Handled::from(failure(e.to_string())),
        },
        ConfigOp::Del(name) => match configs::delete(bucket, &name).await {
            Ok(()) => {
                service
                    .event(events::CONFIG_DELETED, events::config(&name))
                    .await;
                Handled::from(CtlResponse::<()>::ok("successfully deleted config", None))
            }
            Err(e) => Handled::from(failure(format!("Unable to delete config data: {e}"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spec_nats::subjects;

    #[test]
    fn subjects_name_exactly_one_config() {
        let p = "wasmbus.ctl.v1.lat.config";
        assert_eq!(
            ConfigOp::from_subject(p, &format!("{p}.put.redis-url")),
            Some(ConfigOp::Put("redis-url".into()))
        );
        assert_eq!(
            ConfigOp::from_subject(p, &format!("{p}.del.x")),
            Some(ConfigOp::Del("x".into()))
        );
        for bad in ["put", "put.", "put.a.b", "list.a", "get"] {
            assert_eq!(
                ConfigOp::from_subject(p, &format!("{p}.{bad}")),
                None,
                "{bad}"
            );
        }
        assert_eq!(
            ConfigOp::from_subject("wasmbus.ctl.v1.other.config", &format!("{p}.get.a")),
            None
        );
        let custom = subjects::ctl_config_prefix("acme.ctl", "lat");
        assert_eq!(custom, "acme.ctl.v1.lat.config");
        assert_eq!(
            ConfigOp::from_subject(&custom, &format!("{custom}.get.a")),
            Some(ConfigOp::Get("a".into()))
        );
        assert_eq!(ConfigOp::from_subject(&custom, &format!("{p}.get.a")), None);
    }
}
