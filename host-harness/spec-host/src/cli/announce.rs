//! What a one-shot write (`spec-host link put|del`, `spec put`) tells the
//! lattice, as a host that answered the same request over the control
//! subjects would: `linkdef_set` after a stored put, `linkdef_deleted`
//! for each link a delete or a spec put removed. Without them, the guard
//! of a `spec-host serve` beside wasmCloud v1.9 hosts would take a link
//! deleted here for one dropped by a blind write, and put it back.
//! Nothing is sent when the store is in memory.

use super::backends::Backends;
use spec_model::Link;
use spec_nats::events;

/// Publishes `name` with `data` on the lattice, if there is one.
async fn publish(
    backends: &Backends,
    name: &str,
    data: std::collections::BTreeMap<String, serde_json::Value>,
) {
    if let Some(lattice) = &backends.lattice {
        let source = super::random_host_id();
        events::publish(
            &lattice.client,
            &lattice.options.lattice,
            &source,
            name,
            data,
        )
        .await;
        // A one-shot command exits right after: send it now.
        if let Err(e) = lattice.client.flush().await {
            tracing::warn!(error = %e, "cannot send the {name} event");
        }
    }
}

/// After `link put` stored `link`.
pub(crate) async fn link_set(backends: &Backends, link: &Link) {
    publish(backends, events::LINKDEF_SET, events::linkdef_set(link)).await;
}

/// After a delete or spec put that removed `removed` (their names as the
/// request named them).
pub(crate) async fn links_deleted(backends: &Backends, removed: &[Link]) {
    for link in removed {
        let data = events::linkdef_deleted(
            &link.source_id,
            &link.name,
            &link.wit_namespace,
            &link.wit_package,
            Some(link),
        );
        publish(backends, events::LINKDEF_DELETED, data).await;
    }
}

/// After `link del` of a name that removed nothing: still announced, as a
/// host does (the request succeeded).
pub(crate) async fn link_name_deleted(
    backends: &Backends,
    source: &str,
    namespace: &str,
    package: &str,
    name: &str,
) {
    let data = events::linkdef_deleted(source, name, namespace, package, None);
    publish(backends, events::LINKDEF_DELETED, data).await;
}
