//! The one place where the bench converts between the host's model
//! (`spec_host::model`, what `SpecHost` answers with) and the plugin logic's
//! own types (`spec_plugin::{model, report, error}`).
//!
//! The native path converts its inputs and answers here so that both paths
//! take and return exactly the same host types: the comparison then includes,
//! on both sides, the cost of handing a caller a `spec_host` value.

use spec_host::backend::{
    error_chain, NotifyError as HostNotifyError, StoreError as HostStoreError,
};
use spec_host::error::{SpecError as HostSpecError, StoreFailure};
use spec_host::model as h;
use spec_plugin::error as pe;
use spec_plugin::model as pm;
use spec_plugin::report as pr;

/// A host link as the plugin logic's link.
pub fn link_to_native(l: h::Link) -> pm::Link {
    pm::Link {
        source_id: l.source_id,
        target: l.target,
        name: l.name,
        wit_namespace: l.wit_namespace,
        wit_package: l.wit_package,
        interfaces: l.interfaces,
        source_config: l.source_config,
        target_config: l.target_config,
    }
}

/// A plugin-logic link as the host's link.
pub fn link_from_native(l: pm::Link) -> h::Link {
    h::Link {
        source_id: l.source_id,
        target: l.target,
        name: l.name,
        wit_namespace: l.wit_namespace,
        wit_package: l.wit_package,
        interfaces: l.interfaces,
        source_config: l.source_config,
        target_config: l.target_config,
    }
}

fn links_from_native(links: Vec<pm::Link>) -> Vec<h::Link> {
    links.into_iter().map(link_from_native).collect()
}

/// A host spec as the plugin logic's spec.
pub fn spec_to_native(s: h::ComponentSpecification) -> pm::ComponentSpecification {
    pm::ComponentSpecification {
        url: s.url,
        links: s.links.into_iter().map(link_to_native).collect(),
    }
}

/// A plugin-logic spec as the host's spec.
pub fn spec_from_native(s: pm::ComponentSpecification) -> h::ComponentSpecification {
    h::ComponentSpecification {
        url: s.url,
        links: links_from_native(s.links),
    }
}

fn delivery_from_native(d: pr::Delivery) -> h::Delivery {
    h::Delivery {
        provider_id: d.provider_id,
        kind: match d.kind {
            pr::DeliveryKind::Put => h::DeliveryKind::Put,
            pr::DeliveryKind::Delete => h::DeliveryKind::Delete,
        },
        link: link_from_native(d.link),
        error: d.error.map(notify_error_from_native),
    }
}

/// An update report as the host's.
pub fn report_from_native(r: pr::UpdateReport) -> h::UpdateReport {
    h::UpdateReport {
        id: r.id,
        added: links_from_native(r.added),
        removed: links_from_native(r.removed),
        deliveries: r.deliveries.into_iter().map(delivery_from_native).collect(),
        import_links: r
            .import_links
            .into_iter()
            .map(|i| h::ImportLink {
                name: i.name,
                interface: i.interface,
                target: i.target,
            })
            .collect(),
        links: links_from_native(r.links),
    }
}

/// A link put's result as the host's.
pub fn put_result_from_native(r: pr::PutLinkResult) -> h::PutLinkResult {
    h::PutLinkResult {
        outcome: match r.outcome {
            pr::PutOutcome::Appended => h::PutOutcome::Appended,
            pr::PutOutcome::Replaced => h::PutOutcome::Replaced,
            pr::PutOutcome::Unchanged => h::PutOutcome::Unchanged,
        },
        revision: r.revision,
        update: report_from_native(r.update),
    }
}

/// A link delete's result as the host's.
pub fn delete_link_result_from_native(r: pr::DeleteLinkResult) -> h::DeleteLinkResult {
    h::DeleteLinkResult {
        removed: links_from_native(r.removed),
        update: r.update.map(report_from_native),
        revision: r.revision,
    }
}

/// A spec store's result as the host's.
pub fn store_result_from_native(r: pr::StoreResult) -> h::StoreResult {
    h::StoreResult {
        revision: r.revision,
        update: report_from_native(r.update),
    }
}

/// A backend store error as the plugin logic sees it. The message carries
/// the whole cause chain, as the host's conversion to WIT does.
pub fn store_error_to_native(e: &HostStoreError) -> pe::StoreError {
    let text = error_chain(e);
    match e {
        HostStoreError::InvalidKey { .. } => pe::StoreError::InvalidKey(text),
        HostStoreError::RevisionMismatch { .. } => pe::StoreError::RevisionMismatch(text),
        HostStoreError::Timeout { .. } => pe::StoreError::Timeout(text),
        HostStoreError::ConnectionLost { .. } => pe::StoreError::ConnectionLost(text),
        HostStoreError::Other { .. } => pe::StoreError::Other(text),
    }
}

/// A backend delivery error as the plugin logic sees it.
pub fn notify_error_to_native(e: HostNotifyError) -> pe::NotifyError {
    match e {
        HostNotifyError::NoSuchProvider(id) => pe::NotifyError::NoSuchProvider(id),
        HostNotifyError::DeliveryFailed(m) => pe::NotifyError::DeliveryFailed(m),
    }
}

fn notify_error_from_native(e: pe::NotifyError) -> HostNotifyError {
    match e {
        pe::NotifyError::NoSuchProvider(id) => HostNotifyError::NoSuchProvider(id),
        pe::NotifyError::DeliveryFailed(m) => HostNotifyError::DeliveryFailed(m),
    }
}

/// The plugin logic's error as the host's `SpecError`.
pub fn spec_error_from_native(e: pe::SpecError) -> HostSpecError {
    match e {
        pe::SpecError::InvalidId(m) => HostSpecError::InvalidId(m),
        pe::SpecError::InvalidLink(m) => HostSpecError::InvalidLink(m),
        pe::SpecError::Decode { id, message } => HostSpecError::Decode { id, message },
        pe::SpecError::Store(s) => {
            let (kind, message) = match s {
                pe::StoreError::InvalidKey(m) => (StoreFailure::InvalidKey, m),
                pe::StoreError::RevisionMismatch(m) => (StoreFailure::RevisionMismatch, m),
                pe::StoreError::Timeout(m) => (StoreFailure::Timeout, m),
                pe::StoreError::ConnectionLost(m) => (StoreFailure::ConnectionLost, m),
                pe::StoreError::Other(m) => (StoreFailure::Other, m),
            };
            HostSpecError::Store { kind, message }
        }
        pe::SpecError::Conflict(m) => HostSpecError::Conflict(m),
        pe::SpecError::RevisionConflict(m) => HostSpecError::RevisionConflict(m),
        pe::SpecError::InvalidSnapshot(m) => HostSpecError::InvalidSnapshot(m),
        pe::SpecError::Notify(n) => HostSpecError::Notify(notify_error_from_native(n)),
    }
}
