//! wasmCloud's link control protocol, answered by the plugin.
//!
//! Subjects (control interface 2.x, topic prefix `wasmbus.ctl`):
//! `wasmbus.ctl.v1.{lattice}.link.put` (payload: a `Link`),
//! `…link.del` (payload: `{source_id, name, wit_namespace, wit_package}`,
//! name defaulting to `default`) and `…link.get` (no payload). Replies are
//! `CtlResponse` JSON: `{"success":…,"message":…,"response":…}`, the
//! response left out when there is none; success messages are wasmCloud
//! v1.9's ("successfully set link", "successfully deleted link").
//!
//! A put is checked in the order that costs least: the payload, then the
//! link against the plugin's rules, then its config names (at most
//! [`MAX_CONFIG_NAMES`], looked up all at once), and only then written.
//! `link.get` is answered from the table (no store reads), as wasmCloud
//! answers it from its in-memory table.
//!
//! What a v1.9 host sends besides the reply, this sends too, so that no
//! provider or tool can tell who answered: after a put, the link to
//! `wasmbus.rpc.{lattice}.{source_id}.linkdefs.put` and `…{target}…` (not
//! when it names a secret), then a `linkdef_set` event; after a delete, each
//! removed link to `…{source_id}.linkdefs.del` and `…{target}…`, then a
//! `linkdef_deleted` event. Ids that are providers of a spec-host (this
//! one or another, see `serve::census`) are left out of those id-addressed
//! messages: their own host's table delivers the change, in store order,
//! and a second copy from another host could arrive out of order.

use serde::{Deserialize, Serialize};
use spec_model::Link;

use super::Service;
use crate::rollout::shadow::{self, RequestOutcome};
use spec_embed::backend::error_chain;
use spec_nats::{events, subjects};

/// Config names one link may carry (source and target together). wasmCloud
/// sets no limit; each name costs a store read per put, so a request with
/// thousands would be a cheap way to load the store.
pub use spec_nats::subjects::MAX_CONFIG_NAMES;

/// wasmCloud's reply to a successful `link.put`.
pub const PUT_OK: &str = "successfully set link";
/// wasmCloud's reply to a successful `link.del`.
pub const DEL_OK: &str = "successfully deleted link";

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
    /// The operation a request subject names, if any; `prefix` is
    /// [`subjects::ctl_link_prefix`] of the lattice.
    pub fn from_subject(prefix: &str, subject: &str) -> Option<LinkOp> {
        let rest = subject.strip_prefix(prefix)?;
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
    pub(crate) fn ok(message: &str, response: Option<T>) -> Self {
        CtlResponse {
            success: true,
            message: message.to_string(),
            response,
        }
    }
}

pub(crate) fn failure(message: String) -> CtlResponse<()> {
    CtlResponse {
        success: false,
        message,
        response: None,
    }
}

fn default_link_name() -> String {
    spec_model::DEFAULT_LINK_NAME.to_string()
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
#[derive(Clone)]
pub struct Handled {
    /// `CtlResponse` JSON.
    pub reply: bytes::Bytes,
    /// For counters and logs.
    pub success: bool,
    /// The failure message, if any.
    pub message: String,
}

impl Handled {
    pub(crate) fn from<T: Serialize>(response: CtlResponse<T>) -> Handled {
        Handled {
            reply: encode(&response).into(),
            success: response.success,
            message: if response.success {
                String::new()
            } else {
                response.message
            },
        }
    }
}

/// Answers one link request.
pub async fn handle(service: &Service, op: LinkOp, payload: &[u8]) -> Handled {
    match op {
        LinkOp::Put => Handled::from(put(service, payload).await),
        LinkOp::Del => Handled::from(del(service, payload).await),
        LinkOp::Get => {
            // Never an answer from part of the table.
            if let Some(reason) = service
                .table_unready(std::time::Duration::from_secs(1))
                .await
            {
                return Handled::from(failure(format!("not ready: {reason}; try again")));
            }
            // Read-your-writes on this host: its own writes reach the table
            // through the follower, within a millisecond or so.
            service
                .host
                .caught_up_with_own_writes(std::time::Duration::from_millis(500))
                .await;
            get(service)
        }
    }
}

/// `link.get`: every link in the table. A reply the server would refuse
/// (over its `max_payload`) is replaced by an error that says so. The
/// reply is kept until the table changes: a flood of gets on a large
/// lattice costs a copy each, not an encoding each.
///
/// A lattice too large for one reply is told so before any link is copied
/// out of the table or encoded: every link takes at least
/// [`min_link_json`] bytes, so the count alone can rule a reply out. (At a
/// million components the whole listing is hundreds of megabytes of JSON,
/// far over any server's `max_payload`, and building it per request would
/// cost seconds.) A v1.9 client can do nothing with part of a listing, so
/// the answer is the error, with the way to list them all.
fn get(service: &Service) -> Handled {
    let version = service.host.table_version();
    if let Some(cached) = service.cached_link_get(version) {
        return cached;
    }
    let limit = service.max_payload();
    let count = service.host.table_stats().links;
    let least = count.saturating_mul(min_link_json());
    if least > limit {
        let handled = Handled::from(failure(too_large(
            count,
            &format!("reply of at least {least} bytes"),
            limit,
        )));
        service.cache_link_get(version, handled.clone());
        return handled;
    }
    let (version, links) = service.host.links_versioned();
    let count = links.len();
    let handled = link_get_reply(
        service,
        count,
        Handled::from(CtlResponse::ok("", Some(links))),
    );
    service.cache_link_get(version, handled.clone());
    handled
}

fn link_get_reply(service: &Service, count: usize, handled: Handled) -> Handled {
    let limit = service.max_payload();
    if handled.reply.len() > limit {
        let size = format!("{} byte reply", handled.reply.len());
        return Handled::from(failure(too_large(count, &size, limit)));
    }
    handled
}

fn too_large(count: usize, size: &str, limit: usize) -> String {
    format!(
        "the {count} links of the lattice make a {size}, over the NATS server's max_payload of {limit} bytes; \
         list them with `spec-host link list`"
    )
}

/// The fewest bytes one link takes in a `link.get` reply: its JSON with
/// every string and list empty, and the comma after it.
fn min_link_json() -> usize {
    static MIN: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MIN.get_or_init(|| {
        let empty = Link::new("", "", "", "", &[]).named("");
        serde_json::to_vec(&empty).map_or(0, |v| v.len() + 1)
    })
}

async fn put(service: &Service, payload: &[u8]) -> CtlResponse<()> {
    let link: Link = match serde_json::from_slice(payload) {
        Ok(link) => link,
        Err(e) => return failure(format!("invalid link.put payload: {e}")),
    };
    // Configs are looked up only for a link the rules accept; a link that
    // names none goes straight to the put, which checks the rules itself.
    if link.config_names().next().is_some() {
        if let Err(e) = service.host.check_link(&link).await {
            return fault_or_failure(service, &e);
        }
        if let Err(message) = check_configs(service, &link).await {
            return failure(message);
        }
    }
    let Some(shadow) = service.shadow() else {
        return put_link(service, &link).await.0;
    };
    // A build being shadowed repeats the put later, on what this one read.
    let ((response, written, comparable), reads) =
        shadow::record_reads(put_link(service, &link)).await;
    if comparable {
        let live = outcome(&response, written);
        shadow.compare(shadow::Request::Put(link), reads, live);
    }
    response
}

/// The live put: stored, then told lattice-wide. Returns the reply, the
/// bytes written and whether the outcome was the plugin's own answer (not
/// a store failure or a fault), which a shadow build must match.
async fn put_link(service: &Service, link: &Link) -> (CtlResponse<()>, Option<Vec<u8>>, bool) {
    let put = match service.host.put_link(link.clone()).await {
        Ok(put) => put,
        Err(e) => return (fault_or_failure(service, &e), None, plugins_answer(&e)),
    };
    if !link
        .config_names()
        .any(|n| n.starts_with(subjects::SECRET_PREFIX))
    {
        broadcast(service, link, true).await;
    }
    service
        .event(events::LINKDEF_SET, events::linkdef_set(link))
        .await;
    (CtlResponse::ok(PUT_OK, None), put.result.value, true)
}

/// Whether a failure is the plugin's decision (a conflict, an invalid
/// link), as opposed to the store's or a fault.
fn plugins_answer(e: &spec_embed::error::CallError) -> bool {
    matches!(e.spec(), Some(spec) if !matches!(spec, spec_embed::error::SpecError::Store(_)))
}

/// A failed request's reply; a plugin fault (trap, limit) is also counted,
/// for rollouts to compare builds by.
fn fault_or_failure(service: &Service, e: &spec_embed::error::CallError) -> CtlResponse<()> {
    if e.is_plugin_fault() {
        service
            .counters
            .faults
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    failure(error_chain(e))
}

/// What a request did, as a shadow comparison sees it.
fn outcome(response: &CtlResponse<()>, written: Option<Vec<u8>>) -> RequestOutcome {
    RequestOutcome {
        reply: match response.success {
            true => Ok(()),
            false => Err(response.message.clone()),
        },
        written,
    }
}

/// Sends `link` to its source's and target's id subjects (put or del),
/// leaving out providers of spec-hosts (their own host's table tells them,
/// in store order). Failures are logged: the request itself has succeeded
/// (v1.9 only warns, too).
async fn broadcast(service: &Service, link: &Link, put: bool) {
    let defs = service.lattice.link_defs();
    let mut ids = vec![&link.source_id];
    if link.target != link.source_id {
        ids.push(&link.target);
    }
    for id in ids
        .into_iter()
        .filter(|id| !service.served_by_a_spec_host(id))
    {
        let sent = if put {
            defs.put(id, link).await
        } else {
            defs.delete(id, link).await
        };
        if let Err(e) = sent {
            tracing::warn!(to = %id, error = %e, "cannot send the link lattice-wide");
        }
    }
}

/// Every config a link names must exist in `CONFIGDATA_{lattice}`, as
/// wasmCloud v1.9 requires — secret references (`SECRET…`) too, which live
/// there as references (their values are never read by this host). All
/// names are looked up at once; the message lists every missing one in
/// wasmCloud's words.
async fn check_configs(service: &Service, link: &Link) -> Result<(), String> {
    let names: Vec<&str> = link.config_names().collect();
    if names.len() > MAX_CONFIG_NAMES {
        return Err(format!(
            "the link names {} configurations; at most {MAX_CONFIG_NAMES} are allowed",
            names.len()
        ));
    }
    let configs = &service.lattice.configs;
    let lookups = names.iter().map(|name| async move {
        match configs.get(*name).await {
            Ok(Some(_)) => None,
            Ok(None) if name.starts_with(subjects::SECRET_PREFIX) => {
                Some(format!("Secret reference {name} not found in config store"))
            }
            Ok(None) => Some(format!("Configuration {name} not found in config store")),
            Err(e) => Some(format!(
                "cannot check configuration {name:?}: {}",
                error_chain(&e)
            )),
        }
    });
    let problems: Vec<String> = futures::future::join_all(lookups)
        .await
        .into_iter()
        .flatten()
        .collect();
    if problems.is_empty() {
        return Ok(());
    }
    let listed: String = problems.iter().map(|p| format!("{p}. ")).collect();
    Err(format!(
        "Failed to validate configuration and secrets. {listed}"
    ))
}

async fn del(service: &Service, payload: &[u8]) -> CtlResponse<()> {
    let req: DeleteRequest = match serde_json::from_slice(payload) {
        Ok(req) => req,
        Err(e) => return failure(format!("invalid link.del payload: {e}")),
    };
    let Some(shadow) = service.shadow() else {
        return delete_link(service, &req).await.0;
    };
    let ((response, written, comparable), reads) =
        shadow::record_reads(delete_link(service, &req)).await;
    if comparable {
        let request =
            shadow::Request::Del(req.source_id, req.wit_namespace, req.wit_package, req.name);
        shadow.compare(request, reads, outcome(&response, written));
    }
    response
}

/// The live delete: written, then told lattice-wide. Returns what
/// [`put_link`] returns.
async fn delete_link(
    service: &Service,
    req: &DeleteRequest,
) -> (CtlResponse<()>, Option<Vec<u8>>, bool) {
    let result = service
        .host
        .delete_link(
            &req.source_id,
            &req.wit_namespace,
            &req.wit_package,
            Some(&req.name),
        )
        .await;
    // Deleting a link that is not there succeeds: the request is
    // idempotent, as in wasmCloud.
    let deleted = match result {
        Ok(deleted) => deleted,
        Err(e) => return (fault_or_failure(service, &e), None, plugins_answer(&e)),
    };
    for link in &deleted.removed {
        broadcast(service, link, false).await;
    }
    let data = events::linkdef_deleted(
        &req.source_id,
        &req.name,
        &req.wit_namespace,
        &req.wit_package,
        deleted.removed.first(),
    );
    service.event(events::LINKDEF_DELETED, data).await;
    let written = deleted.result.written.map(|w| w.value);
    (CtlResponse::ok(DEL_OK, None), written, true)
}
