//! The HTTP API the page talks to (`API.md` beside this file).
//!
//! Edits go through wasmCloud's own link control requests — the path
//! `wash link put` takes — so whichever host answers applies the same rules
//! and its message (a conflict, a missing config) comes back word for word.
//!
//! A browser on another site must not be able to drive this API through
//! the operator's browser: requests must name this server in `Host` (no
//! DNS rebinding), writes must be `application/json` (a cross-site form
//! cannot send that without a CORS preflight, which is never granted) and
//! an `Origin`, when sent, must be this server. Off loopback the `Host`
//! check cannot hold (any name may reach the server), so there every API
//! request must carry the server's token, as `Authorization: Bearer …` or,
//! for the event stream a browser opens without headers, `?token=…`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use super::view::View;
use spec_embed::backend::error_chain;
use spec_embed::SpecHost;

/// How long an edit waits for a host's answer.
pub const EDIT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest request body taken.
pub const MAX_BODY: usize = 64 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct Ui {
    /// The lattice as the page sees it.
    pub view: Arc<View>,
    /// This process's plugin table (import links).
    pub host: SpecHost,
    /// The NATS connection edits are sent on.
    pub client: async_nats::Client,
    /// Where link edits go: the lattice's link control prefix.
    pub link_prefix: String,
    /// `Host` header values accepted (`None`: any).
    pub hosts: Option<Vec<String>>,
    /// Ends event streams at shutdown.
    pub stop: watch::Receiver<bool>,
    /// The token every API request must carry (`None`: none needed, on
    /// loopback).
    pub token: Option<String>,
}

/// Compares in time that does not depend on where the texts differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

fn edit_reply(status: StatusCode, success: bool, message: impl Into<String>) -> Response {
    (
        status,
        Json(json!({ "success": success, "message": message.into() })),
    )
        .into_response()
}

impl Ui {
    /// Refuses (`Some` reply) a request whose `Host` is not this server.
    pub fn refuse_host(&self, headers: &HeaderMap) -> Option<Response> {
        let Some(allowed) = &self.hosts else {
            return None;
        };
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if allowed.iter().any(|a| a == host) {
            return None;
        }
        Some(error(
            StatusCode::FORBIDDEN,
            format!("this server answers as {} only", allowed.join(" or ")),
        ))
    }

    /// Refuses an API request with a foreign `Host`, or without the token
    /// when one is set.
    pub fn refuse(&self, headers: &HeaderMap, query: Option<&str>) -> Option<Response> {
        if let Some(r) = self.refuse_host(headers) {
            return Some(r);
        }
        let expected = self.token.as_deref()?;
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let in_query =
            query.and_then(|q| q.split('&').find_map(|pair| pair.strip_prefix("token=")));
        match bearer.or(in_query) {
            Some(given) if same_secret(given, expected) => None,
            _ => Some(error(
                StatusCode::UNAUTHORIZED,
                "this server needs its token (open the URL it printed, with ?token=…)",
            )),
        }
    }

    /// Refuses a write that a page of another site could have sent.
    fn refuse_write(&self, headers: &HeaderMap, query: Option<&str>) -> Option<Response> {
        if let Some(r) = self.refuse(headers, query) {
            return Some(r);
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Some(edit_reply(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                false,
                "send the body as application/json",
            ));
        }
        if let (Some(origin), Some(host)) = (
            headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        ) {
            let same = origin
                .split_once("://")
                .is_some_and(|(_, rest)| rest == host);
            if !same {
                return Some(edit_reply(
                    StatusCode::FORBIDDEN,
                    false,
                    format!("edits from {origin} are not accepted"),
                ));
            }
        }
        None
    }

    /// Sends a link control request and answers with the host's reply.
    async fn ctl(&self, op: &str, body: Vec<u8>) -> Response {
        let subject = format!("{}.{op}", self.link_prefix);
        let asked = tokio::time::timeout(EDIT_TIMEOUT, self.client.request(subject, body.into()));
        let msg = match asked.await {
            Ok(Ok(msg)) => msg,
            Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
                return edit_reply(
                    StatusCode::BAD_GATEWAY,
                    false,
                    "no host serves this lattice's link requests (start `spec-host serve` or a wasmCloud host)",
                )
            }
            Ok(Err(e)) => {
                return edit_reply(StatusCode::BAD_GATEWAY, false, error_chain(&e));
            }
            Err(_) => {
                return edit_reply(
                    StatusCode::GATEWAY_TIMEOUT,
                    false,
                    format!("no host answered within {} s", EDIT_TIMEOUT.as_secs()),
                )
            }
        };
        #[derive(Deserialize)]
        struct Reply {
            success: bool,
            #[serde(default)]
            message: String,
        }
        match serde_json::from_slice::<Reply>(&msg.payload) {
            Ok(r) => edit_reply(StatusCode::OK, r.success, r.message),
            Err(e) => edit_reply(
                StatusCode::BAD_GATEWAY,
                false,
                format!("the host's reply does not decode: {e}"),
            ),
        }
    }
}

/// `GET /api/snapshot`
pub async fn snapshot(
    State(ui): State<Ui>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = ui.refuse(&headers, query.as_deref()) {
        return r;
    }
    Json(ui.view.snapshot()).into_response()
}

/// `GET /api/components/{id}`
pub async fn component(
    State(ui): State<Ui>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = ui.refuse(&headers, query.as_deref()) {
        return r;
    }
    if let Err(e) = spec_model::validate::validate_id(&id) {
        return error(StatusCode::BAD_REQUEST, e.to_string());
    }
    let Some((spec, inbound)) = ui.view.component(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no component {id:?} in lattice {}", ui.view.lattice()),
        );
    };
    let import_links = match ui.host.import_links(&id).await {
        Ok(links) => json!(links),
        Err(e) => {
            tracing::warn!(%id, error = %error_chain(&e), "import links");
            Value::Null
        }
    };
    Json(json!({
        "id": id,
        "url": spec.as_ref().map(|s| s.url.clone()).unwrap_or_default(),
        "outbound": spec.map(|s| s.links).unwrap_or_default(),
        "inbound": inbound,
        "import_links": import_links,
    }))
    .into_response()
}

/// `GET /api/events`: server-sent events, starting with the connection
/// state. A page too far behind is cut off; its browser reconnects and
/// reads the snapshot again.
pub async fn events(
    State(ui): State<Ui>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    if let Some(r) = ui.refuse(&headers, query.as_deref()) {
        return r;
    }
    let first = Event::default()
        .event("connection")
        .data(json!({ "connected": ui.view.is_connected() }).to_string());
    let receiver = ui.view.subscribe();
    let stream = event_stream(first, receiver, ui.stop.clone());
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn event_stream(
    first: Event,
    receiver: broadcast::Receiver<super::view::UiEvent>,
    stop: watch::Receiver<bool>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let state = (Some(first), receiver, stop);
    futures::stream::unfold(state, |(first, mut receiver, mut stop)| async move {
        if let Some(first) = first {
            return Some((Ok(first), (None, receiver, stop)));
        }
        if *stop.borrow() {
            return None;
        }
        let next = tokio::select! {
            _ = stop.changed() => return None,
            next = receiver.recv() => next,
        };
        match next {
            Ok(e) => {
                let event = Event::default().event(e.name).data(e.data.to_string());
                Some((Ok(event), (None, receiver, stop)))
            }
            // Lagged or closed: end; the browser reconnects.
            Err(_) => None,
        }
    })
}

/// `POST /api/links`: a link put, as `wash link put` sends it.
pub async fn put_link(
    State(ui): State<Ui>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(r) = ui.refuse_write(&headers, query.as_deref()) {
        return r;
    }
    let link: spec_model::Link = match serde_json::from_slice(&body) {
        Ok(link) => link,
        Err(e) => return edit_reply(StatusCode::BAD_REQUEST, false, format!("not a link: {e}")),
    };
    match serde_json::to_vec(&link) {
        Ok(body) => ui.ctl("put", body).await,
        Err(e) => edit_reply(StatusCode::BAD_REQUEST, false, e.to_string()),
    }
}

/// The body of `POST /api/links/delete` (wasmCloud's delete request).
#[derive(Deserialize, serde::Serialize)]
struct DeleteLink {
    source_id: String,
    #[serde(default = "default_name")]
    name: String,
    wit_namespace: String,
    wit_package: String,
}

fn default_name() -> String {
    spec_model::DEFAULT_LINK_NAME.to_string()
}

/// `POST /api/links/delete`: a link delete, as `wash link del` sends it.
pub async fn delete_link(
    State(ui): State<Ui>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    if let Some(r) = ui.refuse_write(&headers, query.as_deref()) {
        return r;
    }
    let req: DeleteLink = match serde_json::from_slice(&body) {
        Ok(req) => req,
        Err(e) => {
            return edit_reply(
                StatusCode::BAD_REQUEST,
                false,
                format!("not a link delete request: {e}"),
            )
        }
    };
    match serde_json::to_vec(&req) {
        Ok(body) => ui.ctl("del", body).await,
        Err(e) => edit_reply(StatusCode::BAD_REQUEST, false, e.to_string()),
    }
}
