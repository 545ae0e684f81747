//! Conversions between the private wasmtime bindings and [`crate::model`]:
//! the one place where each type crosses the boundary.

use super::bindings::{wit_specs as s, wit_types as t};
use crate::backend::{error_chain, NotifyError, StoreError};
use crate::error::{SpecError, StoreFailure};
use crate::model::{
    ComponentSpecification, DeleteLinkResult, DeleteSpecResult, Delivery, DeliveryKind, ImportLink,
    Link, LinkListing, PutLinkResult, PutOutcome, ReloadReport, StoreResult, TableEntry,
    UpdateReport,
};

pub(crate) fn link_to_wit(l: Link) -> t::Link {
    t::Link {
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

pub(crate) fn link_from_wit(l: t::Link) -> Link {
    Link {
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

fn links_from_wit(links: Vec<t::Link>) -> Vec<Link> {
    links.into_iter().map(link_from_wit).collect()
}

pub(crate) fn spec_to_wit(spec: ComponentSpecification) -> t::ComponentSpecification {
    t::ComponentSpecification {
        url: spec.url,
        links: spec.links.into_iter().map(link_to_wit).collect(),
    }
}

pub(crate) fn spec_from_wit(spec: t::ComponentSpecification) -> ComponentSpecification {
    ComponentSpecification {
        url: spec.url,
        links: links_from_wit(spec.links),
    }
}

pub(crate) fn store_error_to_wit(e: &StoreError) -> t::StoreError {
    // The message carries the whole cause chain: the WIT boundary only
    // takes a string, and the plugin passes it back unchanged.
    let text = error_chain(e);
    match e {
        StoreError::InvalidKey { .. } => t::StoreError::InvalidKey(text),
        StoreError::RevisionMismatch { .. } => t::StoreError::RevisionMismatch(text),
        StoreError::Timeout { .. } => t::StoreError::Timeout(text),
        StoreError::ConnectionLost { .. } => t::StoreError::ConnectionLost(text),
        StoreError::Other { .. } => t::StoreError::Other(text),
    }
}

pub(crate) fn notify_error_to_wit(e: NotifyError) -> t::NotifyError {
    match e {
        NotifyError::NoSuchProvider(id) => t::NotifyError::NoSuchProvider(id),
        NotifyError::DeliveryFailed(msg) => t::NotifyError::DeliveryFailed(msg),
    }
}

fn notify_error_from_wit(e: t::NotifyError) -> NotifyError {
    match e {
        t::NotifyError::NoSuchProvider(id) => NotifyError::NoSuchProvider(id),
        t::NotifyError::DeliveryFailed(msg) => NotifyError::DeliveryFailed(msg),
    }
}

pub(crate) fn spec_error_from_wit(e: t::SpecError) -> SpecError {
    match e {
        t::SpecError::InvalidId(m) => SpecError::InvalidId(m),
        t::SpecError::InvalidLink(m) => SpecError::InvalidLink(m),
        t::SpecError::Decode(d) => SpecError::Decode {
            id: d.id,
            message: d.message,
        },
        t::SpecError::Store(s) => {
            let (kind, message) = match s {
                t::StoreError::InvalidKey(m) => (StoreFailure::InvalidKey, m),
                t::StoreError::RevisionMismatch(m) => (StoreFailure::RevisionMismatch, m),
                t::StoreError::Timeout(m) => (StoreFailure::Timeout, m),
                t::StoreError::ConnectionLost(m) => (StoreFailure::ConnectionLost, m),
                t::StoreError::Other(m) => (StoreFailure::Other, m),
            };
            SpecError::Store { kind, message }
        }
        t::SpecError::Conflict(m) => SpecError::Conflict(m),
        t::SpecError::RevisionConflict(m) => SpecError::RevisionConflict(m),
        t::SpecError::InvalidSnapshot(m) => SpecError::InvalidSnapshot(m),
        t::SpecError::Notify(n) => SpecError::Notify(notify_error_from_wit(n)),
    }
}

pub(crate) fn report_from_wit(r: s::UpdateReport) -> UpdateReport {
    UpdateReport {
        id: r.id,
        added: links_from_wit(r.added),
        removed: links_from_wit(r.removed),
        deliveries: r
            .deliveries
            .into_iter()
            .map(|d| Delivery {
                provider_id: d.provider_id,
                kind: match d.kind {
                    s::DeliveryKind::Put => DeliveryKind::Put,
                    s::DeliveryKind::Delete => DeliveryKind::Delete,
                },
                link: link_from_wit(d.link),
                error: d.error.map(notify_error_from_wit),
            })
            .collect(),
        import_links: r
            .import_links
            .into_iter()
            .map(|i| ImportLink {
                name: i.name,
                interface: i.interface,
                target: i.target,
            })
            .collect(),
        links: links_from_wit(r.links),
    }
}

pub(crate) fn put_result_from_wit(r: s::PutLinkResult) -> PutLinkResult {
    PutLinkResult {
        outcome: match r.outcome {
            s::PutOutcome::Appended => PutOutcome::Appended,
            s::PutOutcome::Replaced => PutOutcome::Replaced,
            s::PutOutcome::Unchanged => PutOutcome::Unchanged,
        },
        revision: r.revision,
        update: report_from_wit(r.update),
    }
}

pub(crate) fn delete_link_result_from_wit(r: s::DeleteLinkResult) -> DeleteLinkResult {
    DeleteLinkResult {
        removed: links_from_wit(r.removed),
        update: r.update.map(report_from_wit),
        revision: r.revision,
    }
}

pub(crate) fn store_result_from_wit(r: s::StoreResult) -> StoreResult {
    StoreResult {
        revision: r.revision,
        update: report_from_wit(r.update),
    }
}

pub(crate) fn delete_spec_result_from_wit(r: s::DeleteSpecResult) -> DeleteSpecResult {
    DeleteSpecResult {
        existed: r.existed,
        update: report_from_wit(r.update),
    }
}

pub(crate) fn listing_from_wit(r: s::LinkListing) -> LinkListing {
    LinkListing {
        links: links_from_wit(r.links),
        undecodable: r.undecodable,
    }
}

pub(crate) fn reload_from_wit(r: s::ReloadReport) -> ReloadReport {
    ReloadReport {
        loaded: r.loaded,
        links: r.links,
        undecodable: r.undecodable,
    }
}

pub(crate) fn entry_from_wit(e: s::TableEntry) -> TableEntry {
    TableEntry {
        id: e.id,
        links: links_from_wit(e.links),
    }
}

pub(crate) fn entry_to_wit(e: TableEntry) -> s::TableEntry {
    s::TableEntry {
        id: e.id,
        links: e.links.into_iter().map(link_to_wit).collect(),
    }
}
