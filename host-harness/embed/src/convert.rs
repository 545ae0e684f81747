//! One conversion each way between the generated WIT types and
//! [`spec_model`]'s, for everything that crosses the boundary on the host
//! side (the guest has its twin in `guest/plugin/src/component/convert.rs`).

use spec_model::{
    ComponentSpecification, DeleteLinkResult, DeleteSpecResult, DeliveryFailure, DeliveryKind,
    ImportLink, Link, LinkListing, NotifyError, PackedEntry, PutLinkResult, PutOutcome,
    ReloadReport, Snapshot, SpecError, StoreError, UpdateReport, Written,
};

use super::bindings::{wit_specs as s, wit_table as ht, wit_types as t};

// ---- model → WIT ----------------------------------------------------------

pub(crate) fn link_to_wit(l: &Link) -> t::Link {
    t::Link {
        source_id: l.source_id.clone(),
        target: l.target.clone(),
        name: l.name.clone(),
        wit_namespace: l.wit_namespace.clone(),
        wit_package: l.wit_package.clone(),
        interfaces: l.interfaces.clone(),
        source_config: l.source_config.clone(),
        target_config: l.target_config.clone(),
    }
}

pub(crate) fn spec_to_wit(spec: &ComponentSpecification) -> t::ComponentSpecification {
    t::ComponentSpecification {
        url: spec.url.clone(),
        links: spec.links.iter().map(link_to_wit).collect(),
    }
}

pub(crate) fn store_error_to_wit(e: StoreError) -> t::StoreError {
    match e {
        StoreError::InvalidKey(m) => t::StoreError::InvalidKey(m),
        StoreError::AccessDenied(m) => t::StoreError::AccessDenied(m),
        StoreError::RevisionMismatch(m) => t::StoreError::RevisionMismatch(m),
        StoreError::Timeout(m) => t::StoreError::Timeout(m),
        StoreError::ConnectionLost(m) => t::StoreError::ConnectionLost(m),
        StoreError::Other(m) => t::StoreError::Other(m),
    }
}

pub(crate) fn notify_error_to_wit(e: NotifyError) -> t::NotifyError {
    match e {
        NotifyError::NoSuchProvider(m) => t::NotifyError::NoSuchProvider(m),
        NotifyError::DeliveryFailed(m) => t::NotifyError::DeliveryFailed(m),
    }
}

pub(crate) fn snapshot_to_wit(s: &Snapshot) -> ht::Snapshot {
    ht::Snapshot {
        format: s.format,
        entries: s
            .entries
            .iter()
            .map(|e| ht::TableEntry {
                id: e.id.clone(),
                links: e.links.clone(),
            })
            .collect(),
    }
}

// ---- WIT → model ----------------------------------------------------------

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

pub(crate) fn spec_from_wit(s: t::ComponentSpecification) -> ComponentSpecification {
    ComponentSpecification {
        url: s.url,
        links: links_from_wit(s.links),
    }
}

fn store_error_from_wit(e: t::StoreError) -> StoreError {
    match e {
        t::StoreError::InvalidKey(m) => StoreError::InvalidKey(m),
        t::StoreError::AccessDenied(m) => StoreError::AccessDenied(m),
        t::StoreError::RevisionMismatch(m) => StoreError::RevisionMismatch(m),
        t::StoreError::Timeout(m) => StoreError::Timeout(m),
        t::StoreError::ConnectionLost(m) => StoreError::ConnectionLost(m),
        t::StoreError::Other(m) => StoreError::Other(m),
    }
}

fn notify_error_from_wit(e: t::NotifyError) -> NotifyError {
    match e {
        t::NotifyError::NoSuchProvider(m) => NotifyError::NoSuchProvider(m),
        t::NotifyError::DeliveryFailed(m) => NotifyError::DeliveryFailed(m),
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
        t::SpecError::Store(e) => SpecError::Store(store_error_from_wit(e)),
        t::SpecError::Conflict(m) => SpecError::Conflict(m),
        t::SpecError::RevisionConflict(m) => SpecError::RevisionConflict(m),
        t::SpecError::InvalidSnapshot(m) => SpecError::InvalidSnapshot(m),
        t::SpecError::Notify(e) => SpecError::Notify(notify_error_from_wit(e)),
    }
}

fn written_from_wit(w: s::Written) -> Written {
    Written {
        revision: w.revision,
        value: w.value,
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
        value: r.value,
    }
}

pub(crate) fn delete_link_result_from_wit(r: s::DeleteLinkResult) -> DeleteLinkResult {
    DeleteLinkResult {
        removed: links_from_wit(r.removed),
        written: r.written.map(written_from_wit),
    }
}

pub(crate) fn delete_spec_result_from_wit(r: s::DeleteSpecResult) -> DeleteSpecResult {
    DeleteSpecResult {
        existed: r.existed,
        revision: r.revision,
    }
}

pub(crate) fn written_result_from_wit(w: s::Written) -> Written {
    written_from_wit(w)
}

pub(crate) fn listing_from_wit(l: s::LinkListing) -> LinkListing {
    LinkListing {
        links: links_from_wit(l.links),
        undecodable: l.undecodable,
    }
}

pub(crate) fn report_from_wit(r: ht::UpdateReport) -> UpdateReport {
    UpdateReport {
        added: links_from_wit(r.added),
        removed: links_from_wit(r.removed),
        delivered: r.delivered,
        failures: r
            .failures
            .into_iter()
            .map(|f| DeliveryFailure {
                provider_id: f.provider_id,
                kind: match f.kind {
                    ht::DeliveryKind::Put => DeliveryKind::Put,
                    ht::DeliveryKind::Delete => DeliveryKind::Delete,
                },
                link: link_from_wit(f.link),
                error: notify_error_from_wit(f.error),
            })
            .collect(),
        entry: r.entry,
    }
}

pub(crate) fn import_links_from_wit(rows: Vec<ht::ImportLink>) -> Vec<ImportLink> {
    rows.into_iter()
        .map(|r| ImportLink {
            name: r.name,
            interface: r.interface,
            target: r.target,
        })
        .collect()
}

pub(crate) fn snapshot_from_wit(s: ht::Snapshot) -> Snapshot {
    Snapshot {
        format: s.format,
        entries: s
            .entries
            .into_iter()
            .map(|e| PackedEntry {
                id: e.id,
                links: e.links,
            })
            .collect(),
    }
}

pub(crate) fn reload_from_wit(r: ht::ReloadReport) -> ReloadReport {
    ReloadReport {
        loaded: r.loaded,
        links: r.links,
        undecodable: r.undecodable,
    }
}
