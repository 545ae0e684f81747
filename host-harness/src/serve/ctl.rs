//! wasmCloud's link control protocol, answered by the plugin.
//!
//! Subjects (control interface 2.x, topic prefix `wasmbus.ctl`):
//! `wasmbus.ctl.v1.{lattice}.link.put` (payload: a `Link`),
//! `…link.del` (payload: `{source_id, name, wit_namespace, wit_package}`,
//! name defaulting to `default`) and `…link.get` (no payload). Replies are
//! `CtlResponse` JSON: `{"success":…,"message":…,"response":…}`, the
//! response left out when there is none.

use serde::{Deserialize, Serialize};

use super::Service;
use crate::backend::error_chain;
use crate::model::Link;
use crate::nats::subjects;

/// The operations of the link API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinkOp {
    /// `link.put`
    Put,
    /// `link.del`
    Del,
    /// `link.get`
    Get,
}

impl LinkOp {
    /// The operation a request subject names, if any.
    pub fn from_subject(lattice: &str, subject: &str) -> Option<LinkOp> {
        let rest = subject.strip_prefix(&subjects::ctl_link_prefix(lattice))?;
        match rest {
            ".put" => Some(LinkOp::Put),
            ".del" => Some(LinkOp::Del),
            ".get" => Some(LinkOp::Get),
            _ => None,
        }
    }

    /// Name for logs.
    pub fn name(self) -> &'static str {
        match self {
            LinkOp::Put => "link.put",
            LinkOp::Del => "link.del",
            LinkOp::Get => "link.get",
        }
    }
}

/// wasmCloud's `CtlResponse`.
#[derive(Debug, Serialize, Deserialize)]
pub struct CtlResponse<T> {
    /// Whether the request succeeded.
    pub success: bool,
    /// Context, e.g. why it failed.
    pub message: String,
    /// The data, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<T>,
}

impl<T: Serialize> CtlResponse<T> {
    fn ok(response: Option<T>) -> Self {
        CtlResponse {
            success: true,
            message: String::new(),
            response,
        }
    }
}

fn failure(message: String) -> CtlResponse<()> {
    CtlResponse {
        success: false,
        message,
        response: None,
    }
}

fn default_link_name() -> String {
    "default".to_string()
}

/// Payload of `link.del` (wasmCloud's `DeleteInterfaceLinkDefinitionRequest`).
#[derive(Debug, Deserialize)]
struct DeleteRequest {
    source_id: String,
    #[serde(default = "default_link_name")]
    name: String,
    wit_namespace: String,
    wit_package: String,
}

fn encode<T: Serialize>(response: &CtlResponse<T>) -> Vec<u8> {
    // Plain structs of strings, bools and lists always encode; should that
    // ever change, a hand-written failure still reaches the caller.
    serde_json::to_vec(response).unwrap_or_else(|e| {
        format!(r#"{{"success":false,"message":"cannot encode the reply: {e}"}}"#).into_bytes()
    })
}

/// Outcome of one request: the reply bytes and whether it succeeded.
pub struct Handled {
    /// `CtlResponse` JSON.
    pub reply: Vec<u8>,
    /// For counters and logs.
    pub success: bool,
    /// The failure message, if any.
    pub message: String,
}

impl Handled {
    fn from<T: Serialize>(response: CtlResponse<T>) -> Handled {
        Handled {
            reply: encode(&response),
            success: response.success,
            message: response.message,
        }
    }
}

/// Answers one link request.
pub async fn handle(service: &Service, op: LinkOp, payload: &[u8]) -> Handled {
    match op {
        LinkOp::Put => Handled::from(put(service, payload).await),
        LinkOp::Del => Handled::from(del(service, payload).await),
        LinkOp::Get => match service.host.list_links().await {
            Ok(listing) => {
                for id in &listing.undecodable {
                    tracing::warn!(id, "stored spec does not decode; left out of link.get");
                }
                Handled::from(CtlResponse::ok(Some(listing.links)))
            }
            Err(e) => Handled::from(failure(error_chain(&e))),
        },
    }
}

async fn put(service: &Service, payload: &[u8]) -> CtlResponse<()> {
    let link: Link = match serde_json::from_slice(payload) {
        Ok(link) => link,
        Err(e) => return failure(format!("invalid link.put payload: {e}")),
    };
    if let Err(message) = check_configs(service, &link).await {
        return failure(message);
    }
    match service.host.put_link(link).await {
        Ok(_) => CtlResponse::ok(None),
        Err(e) => failure(error_chain(&e)),
    }
}

/// Every config a link names must exist in `CONFIGDATA_{lattice}`, as
/// wasmCloud requires. Secret references are not looked up (secrets are
/// not resolved by this host).
async fn check_configs(service: &Service, link: &Link) -> Result<(), String> {
    let configs = &service.lattice.configs;
    let names = link.source_config.iter().chain(&link.target_config);
    for name in names.filter(|n| !n.starts_with(subjects::SECRET_PREFIX)) {
        match configs.get(name.as_str()).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(format!(
                    "configuration {name:?} does not exist in {}",
                    subjects::config_bucket(&service.lattice.options.lattice)
                ))
            }
            Err(e) => {
                return Err(format!(
                    "cannot check configuration {name:?}: {}",
                    error_chain(&e)
                ))
            }
        }
    }
    Ok(())
}

async fn del(service: &Service, payload: &[u8]) -> CtlResponse<()> {
    let req: DeleteRequest = match serde_json::from_slice(payload) {
        Ok(req) => req,
        Err(e) => return failure(format!("invalid link.del payload: {e}")),
    };
    let result = service
        .host
        .delete_link(
            &req.source_id,
            &req.wit_namespace,
            &req.wit_package,
            Some(&req.name),
        )
        .await;
    match result {
        // Deleting a link that is not there succeeds: the request is
        // idempotent, as in wasmCloud.
        Ok(_) => CtlResponse::ok(None),
        Err(e) => failure(error_chain(&e)),
    }
}
