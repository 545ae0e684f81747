//! One conversion each way between the generated WIT types and
//! [`spec_model`]'s, for everything that crosses the boundary.

#[cfg(feature = "contract-0-2")]
use spec_model::{ComponentSpecification, UpdateReport};
use spec_model::{
    DeleteLinkResult, DeleteSpecResult, DeliveryFailure, DeliveryKind, ImportLink, Link,
    LinkListing, NotifyError, PackedEntry, PutLinkResult, PutOutcome, ReloadReport, Snapshot,
    SpecError, StoreError, Written,
};

use super::bindings::exported::host_table as ht;
use super::bindings::exported::specs as w;
use super::bindings::imported::types as wt;
#[cfg(feature = "contract-0-2")]
use crate::prelude::*;

// ---- WIT → model ----------------------------------------------------------

impl From<wt::Link> for Link {
    fn from(l: wt::Link) -> Self {
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
}

#[cfg(feature = "contract-0-2")]
impl From<wt::ComponentSpecification> for ComponentSpecification {
    fn from(s: wt::ComponentSpecification) -> Self {
        ComponentSpecification {
            url: s.url,
            links: s.links.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<wt::StoreError> for StoreError {
    fn from(e: wt::StoreError) -> Self {
        match e {
            wt::StoreError::InvalidKey(m) => StoreError::InvalidKey(m),
            wt::StoreError::AccessDenied(m) => StoreError::AccessDenied(m),
            wt::StoreError::RevisionMismatch(m) => StoreError::RevisionMismatch(m),
            wt::StoreError::Timeout(m) => StoreError::Timeout(m),
            wt::StoreError::ConnectionLost(m) => StoreError::ConnectionLost(m),
            wt::StoreError::Other(m) => StoreError::Other(m),
        }
    }
}

impl From<wt::NotifyError> for NotifyError {
    fn from(e: wt::NotifyError) -> Self {
        match e {
            wt::NotifyError::NoSuchProvider(m) => NotifyError::NoSuchProvider(m),
            wt::NotifyError::DeliveryFailed(m) => NotifyError::DeliveryFailed(m),
        }
    }
}

impl From<ht::Snapshot> for Snapshot {
    fn from(s: ht::Snapshot) -> Self {
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
}

// ---- model → WIT ----------------------------------------------------------

impl From<&Link> for wt::Link {
    fn from(l: &Link) -> Self {
        l.clone().into()
    }
}

impl From<Link> for wt::Link {
    fn from(l: Link) -> Self {
        wt::Link {
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
}

#[cfg(feature = "contract-0-2")]
fn links_out(links: Vec<Link>) -> Vec<wt::Link> {
    links.into_iter().map(Into::into).collect()
}

#[cfg(feature = "contract-0-2")]
impl From<ComponentSpecification> for wt::ComponentSpecification {
    fn from(s: ComponentSpecification) -> Self {
        wt::ComponentSpecification {
            url: s.url,
            links: links_out(s.links),
        }
    }
}

impl From<StoreError> for wt::StoreError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::InvalidKey(m) => wt::StoreError::InvalidKey(m),
            StoreError::AccessDenied(m) => wt::StoreError::AccessDenied(m),
            StoreError::RevisionMismatch(m) => wt::StoreError::RevisionMismatch(m),
            StoreError::Timeout(m) => wt::StoreError::Timeout(m),
            StoreError::ConnectionLost(m) => wt::StoreError::ConnectionLost(m),
            StoreError::Other(m) => wt::StoreError::Other(m),
        }
    }
}

impl From<NotifyError> for wt::NotifyError {
    fn from(e: NotifyError) -> Self {
        match e {
            NotifyError::NoSuchProvider(m) => wt::NotifyError::NoSuchProvider(m),
            NotifyError::DeliveryFailed(m) => wt::NotifyError::DeliveryFailed(m),
        }
    }
}

impl From<SpecError> for wt::SpecError {
    fn from(e: SpecError) -> Self {
        match e {
            SpecError::InvalidId(m) => wt::SpecError::InvalidId(m),
            SpecError::InvalidLink(m) => wt::SpecError::InvalidLink(m),
            SpecError::Decode { id, message } => {
                wt::SpecError::Decode(wt::DecodeFailure { id, message })
            }
            SpecError::Store(e) => wt::SpecError::Store(e.into()),
            SpecError::Conflict(m) => wt::SpecError::Conflict(m),
            SpecError::RevisionConflict(m) => wt::SpecError::RevisionConflict(m),
            SpecError::InvalidSnapshot(m) => wt::SpecError::InvalidSnapshot(m),
            SpecError::Notify(e) => wt::SpecError::Notify(e.into()),
        }
    }
}

#[cfg(feature = "contract-0-2")]
impl From<Written> for w::Written {
    fn from(r: Written) -> Self {
        w::Written {
            revision: r.revision,
            value: r.value,
        }
    }
}

impl From<PutLinkResult> for w::PutLinkResult {
    fn from(r: PutLinkResult) -> Self {
        w::PutLinkResult {
            outcome: match r.outcome {
                PutOutcome::Appended => w::PutOutcome::Appended,
                PutOutcome::Replaced => w::PutOutcome::Replaced,
                PutOutcome::Unchanged => w::PutOutcome::Unchanged,
            },
            revision: r.revision,
            value: r.value,
        }
    }
}

#[cfg(feature = "contract-0-2")]
impl From<DeleteLinkResult> for w::DeleteLinkResult {
    fn from(r: DeleteLinkResult) -> Self {
        w::DeleteLinkResult {
            removed: links_out(r.removed),
            written: r.written.map(Into::into),
        }
    }
}

impl From<DeleteSpecResult> for w::DeleteSpecResult {
    fn from(r: DeleteSpecResult) -> Self {
        w::DeleteSpecResult {
            existed: r.existed,
            revision: r.revision,
        }
    }
}

#[cfg(feature = "contract-0-2")]
impl From<LinkListing> for w::LinkListing {
    fn from(l: LinkListing) -> Self {
        w::LinkListing {
            links: links_out(l.links),
            undecodable: l.undecodable,
        }
    }
}

#[cfg(feature = "contract-0-2")]
impl From<DeliveryFailure> for ht::DeliveryFailure {
    fn from(d: DeliveryFailure) -> Self {
        ht::DeliveryFailure {
            provider_id: d.provider_id,
            kind: match d.kind {
                DeliveryKind::Put => ht::DeliveryKind::Put,
                DeliveryKind::Delete => ht::DeliveryKind::Delete,
            },
            link: d.link.into(),
            error: d.error.into(),
        }
    }
}

#[cfg(feature = "contract-0-2")]
impl From<UpdateReport> for ht::UpdateReport {
    fn from(r: UpdateReport) -> Self {
        ht::UpdateReport {
            added: links_out(r.added),
            removed: links_out(r.removed),
            delivered: r.delivered,
            failures: r.failures.into_iter().map(Into::into).collect(),
            entry: r.entry,
        }
    }
}

impl From<ImportLink> for ht::ImportLink {
    fn from(r: ImportLink) -> Self {
        ht::ImportLink {
            name: r.name,
            interface: r.interface,
            target: r.target,
        }
    }
}

impl From<Snapshot> for ht::Snapshot {
    fn from(s: Snapshot) -> Self {
        ht::Snapshot {
            format: s.format,
            entries: s
                .entries
                .into_iter()
                .map(|e| ht::TableEntry {
                    id: e.id,
                    links: e.links,
                })
                .collect(),
        }
    }
}

impl From<ReloadReport> for ht::ReloadReport {
    fn from(r: ReloadReport) -> Self {
        ht::ReloadReport {
            loaded: r.loaded,
            links: r.links,
            undecodable: r.undecodable,
        }
    }
}

// ---- model → WIT, contract 0.3: links packed or as positions --------------

#[cfg(not(feature = "contract-0-2"))]
impl From<Written> for w::Stored {
    fn from(r: Written) -> Self {
        w::Stored {
            value: r.value,
            revision: r.revision,
        }
    }
}

#[cfg(not(feature = "contract-0-2"))]
impl From<DeleteLinkResult> for w::DeleteLinkResult {
    fn from(r: DeleteLinkResult) -> Self {
        w::DeleteLinkResult {
            removed: spec_model::packed::pack(&r.removed),
            written: r.written.map(Into::into),
        }
    }
}

#[cfg(not(feature = "contract-0-2"))]
impl From<LinkListing> for w::LinkListing {
    fn from(l: LinkListing) -> Self {
        w::LinkListing {
            links: spec_model::packed::pack(&l.links),
            undecodable: l.undecodable,
        }
    }
}

#[cfg(not(feature = "contract-0-2"))]
impl From<DeliveryFailure> for ht::DeliveryFailure {
    fn from(d: DeliveryFailure) -> Self {
        ht::DeliveryFailure {
            provider_id: d.provider_id,
            kind: match d.kind {
                DeliveryKind::Put => ht::DeliveryKind::Put,
                DeliveryKind::Delete => ht::DeliveryKind::Delete,
            },
            link: spec_model::packed::pack(core::slice::from_ref(&d.link)),
            error: d.error.into(),
        }
    }
}

#[cfg(not(feature = "contract-0-2"))]
impl From<crate::table::Change> for ht::UpdateReport {
    fn from(c: crate::table::Change) -> Self {
        ht::UpdateReport {
            // A spec holds far fewer than 2^32 links (the host caps a
            // value's size), so no position is cut.
            added: c.added_at.into_iter().map(|p| p as u32).collect(),
            removed: spec_model::packed::pack(&c.removed),
            delivered: c.delivered,
            failures: c.failures.into_iter().map(Into::into).collect(),
            entry: c.entry,
        }
    }
}
