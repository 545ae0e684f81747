//! One conversion each way between the generated WIT types and
//! [`spec_model`]'s, for everything that crosses the boundary on the host
//! side (the guest has its twin in `guest/plugin/src/component/convert.rs`).
//!
//! The shared types (links, errors) are 0.2's in both versions; each
//! version's export records have their own module, [`v0_2`] and [`v0_3`].
//! Records of the same shape in both are converted by one macro.

use spec_model::{ComponentSpecification, Link, NotifyError, SpecError, StoreError};

use super::bindings::wit_types as t;

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

pub(crate) fn links_from_wit(links: Vec<t::Link>) -> Vec<Link> {
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

pub(crate) fn notify_error_from_wit(e: t::NotifyError) -> NotifyError {
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

/// The conversions of the export records both versions share, for the
/// module whose generated `specs` is `s` and `host-table` is `ht`.
macro_rules! same_shape {
    () => {
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

        pub(crate) fn delete_spec_result_from_wit(r: s::DeleteSpecResult) -> DeleteSpecResult {
            DeleteSpecResult {
                existed: r.existed,
                revision: r.revision,
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

        fn delivery_kind_from_wit(k: ht::DeliveryKind) -> DeliveryKind {
            match k {
                ht::DeliveryKind::Put => DeliveryKind::Put,
                ht::DeliveryKind::Delete => DeliveryKind::Delete,
            }
        }
    };
}

/// Contract 0.2's export records: links as records.
pub(crate) mod v0_2 {
    use spec_model::{
        DeleteLinkResult, DeleteSpecResult, DeliveryFailure, DeliveryKind, ImportLink, LinkListing,
        PackedEntry, PutLinkResult, PutOutcome, ReloadReport, Snapshot, UpdateReport, Written,
    };

    use super::{link_from_wit, links_from_wit, notify_error_from_wit};
    use crate::bindings::{wit_specs as s, wit_table as ht};

    same_shape!();

    pub(crate) fn written_from_wit(w: s::Written) -> Written {
        Written {
            revision: w.revision,
            value: w.value,
        }
    }

    pub(crate) fn delete_link_result_from_wit(r: s::DeleteLinkResult) -> DeleteLinkResult {
        DeleteLinkResult {
            removed: links_from_wit(r.removed),
            written: r.written.map(written_from_wit),
        }
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
                    kind: delivery_kind_from_wit(f.kind),
                    link: link_from_wit(f.link),
                    error: notify_error_from_wit(f.error),
                })
                .collect(),
            entry: r.entry,
        }
    }
}

/// Contract 0.3's export records: links packed (spec-model's format 1) or
/// as positions in a packed entry. A plugin that returns bytes that do not
/// unpack, or a position past its entry, gets a typed error, never a panic.
pub(crate) mod v0_3 {
    use spec_model::packed::{unpack, Packed};
    use spec_model::{
        DeleteLinkResult, DeleteSpecResult, DeliveryFailure, DeliveryKind, ImportLink, Link,
        LinkListing, PackedEntry, PutLinkResult, PutOutcome, ReloadReport, Snapshot, SpecError,
        StoreError, UpdateReport, Written,
    };

    use super::notify_error_from_wit;
    use crate::bindings::{wit_specs_0_3 as s, wit_table_0_3 as ht};

    same_shape!();

    /// The plugin broke the contract's encoding: a typed error naming what.
    fn malformed(what: &str, message: String) -> SpecError {
        SpecError::Store(StoreError::Other(format!(
            "the plugin returned malformed {what}: {message}"
        )))
    }

    fn links(bytes: &[u8], what: &str) -> Result<Vec<Link>, SpecError> {
        unpack(bytes).map_err(|m| malformed(what, m))
    }

    pub(crate) fn written_from_wit(w: s::Stored) -> Written {
        Written {
            revision: w.revision,
            value: w.value,
        }
    }

    pub(crate) fn delete_link_result_from_wit(
        r: s::DeleteLinkResult,
    ) -> Result<DeleteLinkResult, SpecError> {
        Ok(DeleteLinkResult {
            removed: links(&r.removed, "removed links")?,
            written: r.written.map(written_from_wit),
        })
    }

    pub(crate) fn listing_from_wit(l: s::LinkListing) -> Result<LinkListing, SpecError> {
        Ok(LinkListing {
            links: links(&l.links, "a link listing")?,
            undecodable: l.undecodable,
        })
    }

    /// The report with its added links read out of the entry at their
    /// positions (one pass over the entry; nothing else is decoded).
    pub(crate) fn report_from_wit(r: ht::UpdateReport) -> Result<UpdateReport, SpecError> {
        let added = if r.added.is_empty() {
            Vec::new()
        } else {
            let entry = Packed::from_bytes(&r.entry).map_err(|m| malformed("an entry", m))?;
            r.added
                .iter()
                .map(|&pos| {
                    entry.link(pos as usize).ok_or_else(|| {
                        malformed(
                            "a report",
                            format!("position {pos} is past the entry's {} links", entry.len()),
                        )
                    })
                })
                .collect::<Result<Vec<Link>, SpecError>>()?
        };
        let failures = r
            .failures
            .into_iter()
            .map(|f| {
                let link = links(&f.link, "a delivery failure")?
                    .into_iter()
                    .next()
                    .ok_or_else(|| malformed("a delivery failure", "no link".into()))?;
                Ok(DeliveryFailure {
                    provider_id: f.provider_id,
                    kind: delivery_kind_from_wit(f.kind),
                    link,
                    error: notify_error_from_wit(f.error),
                })
            })
            .collect::<Result<Vec<_>, SpecError>>()?;
        Ok(UpdateReport {
            added,
            removed: links(&r.removed, "removed links")?,
            delivered: r.delivered,
            failures,
            entry: r.entry,
        })
    }
}
