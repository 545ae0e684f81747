//! The component glue: WIT bindings, one conversion each way between
//! generated and native types, and the `specs` export delegating to
//! [`Plugin`]. No logic lives here.

use std::cell::RefCell;

use crate::backend::{Entry, Notifier, Store};
use crate::error::{NotifyError, SpecError, StoreError};
use crate::model::{ComponentSpecification, Link};
use crate::ops::Plugin;
use crate::report::{
    DeleteLinkResult, DeleteSpecResult, Delivery, DeliveryKind, ImportLink, LinkListing,
    PutLinkResult, PutOutcome, ReloadReport, StoreResult, TableEntry, UpdateReport,
};

wit_bindgen::generate!({
    path: "../wit",
    world: "spec-plugin",
    generate_all,
});

use exports::lattice::spec::specs as w;
use lattice::spec::types as wt;
use lattice::spec::{keyvalue, provider_notify};

thread_local! {
    // A component instance runs one call at a time on one thread, so a
    // RefCell is all the synchronisation the state needs.
    static PLUGIN: RefCell<Plugin> = RefCell::new(Plugin::new());
}

/// Runs `f` on the plugin state. The component model forbids re-entering an
/// instance during one of its import calls, so the borrow cannot be taken
/// twice; should it ever be, the call fails instead of trapping.
fn with_plugin<T>(f: impl FnOnce(&mut Plugin) -> Result<T, SpecError>) -> Result<T, wt::SpecError> {
    PLUGIN
        .with(|cell| match cell.try_borrow_mut() {
            Ok(mut plugin) => f(&mut plugin),
            Err(_) => Err(SpecError::Store(StoreError::Other(
                "plugin re-entered".into(),
            ))),
        })
        .map_err(Into::into)
}

/// [`Store`] over the imported `keyvalue` interface.
struct HostStore;

impl Store for HostStore {
    fn get(&mut self, key: &str) -> Result<Option<Entry>, StoreError> {
        keyvalue::get(key)
            .map(|e| {
                e.map(|e| Entry {
                    value: e.value,
                    revision: e.revision,
                })
            })
            .map_err(Into::into)
    }
    fn set(&mut self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        keyvalue::set(key, &value).map_err(Into::into)
    }
    fn compare_and_swap(
        &mut self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, StoreError> {
        keyvalue::compare_and_swap(key, &value, expected).map_err(Into::into)
    }
    fn delete(&mut self, key: &str) -> Result<(), StoreError> {
        keyvalue::delete(key).map_err(Into::into)
    }
    fn list_keys(&mut self, prefix: &str) -> Result<Vec<String>, StoreError> {
        keyvalue::list_keys(prefix).map_err(Into::into)
    }
}

/// [`Notifier`] over the imported `provider-notify` interface.
struct HostNotifier;

impl Notifier for HostNotifier {
    fn local_providers(&mut self) -> Vec<String> {
        provider_notify::local_providers()
    }
    fn link_put(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        provider_notify::link_put(provider, &link.clone().into()).map_err(Into::into)
    }
    fn link_delete(&mut self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        provider_notify::link_delete(provider, &link.clone().into()).map_err(Into::into)
    }
}

/// The exported `specs` implementation.
struct SpecPlugin;

export!(SpecPlugin);

impl w::Guest for SpecPlugin {
    fn plugin_version() -> String {
        crate::PLUGIN_VERSION.to_string()
    }

    fn get_component_spec(id: String) -> Result<Option<wt::ComponentSpecification>, wt::SpecError> {
        with_plugin(|p| p.get_component_spec(&mut HostStore, &id)).map(|s| s.map(Into::into))
    }

    fn store_component_spec(
        id: String,
        spec: wt::ComponentSpecification,
    ) -> Result<w::StoreResult, wt::SpecError> {
        with_plugin(|p| p.store_component_spec(&mut HostStore, &mut HostNotifier, &id, spec.into()))
            .map(Into::into)
    }

    fn delete_component_spec(id: String) -> Result<w::DeleteSpecResult, wt::SpecError> {
        with_plugin(|p| p.delete_component_spec(&mut HostStore, &mut HostNotifier, &id))
            .map(Into::into)
    }

    fn update_host_with_spec(
        id: String,
        spec: wt::ComponentSpecification,
    ) -> Result<w::UpdateReport, wt::SpecError> {
        with_plugin(|p| p.update_host_with_spec(&mut HostNotifier, &id, spec.into()))
            .map(Into::into)
    }

    fn apply_stored_spec(id: String, value: Vec<u8>) -> Result<w::UpdateReport, wt::SpecError> {
        with_plugin(|p| p.apply_stored_spec(&mut HostNotifier, &id, &value)).map(Into::into)
    }

    fn remove_host_spec(id: String) -> Result<w::UpdateReport, wt::SpecError> {
        with_plugin(|p| p.remove_host_spec(&mut HostNotifier, &id)).map(Into::into)
    }

    fn put_link(link: wt::Link) -> Result<w::PutLinkResult, wt::SpecError> {
        // Test-only fault: a trap on one specific id, before anything is
        // read or written (the reliability suite checks that only that
        // request fails).
        #[cfg(feature = "fault-injection")]
        if link.source_id == "poison-pill" {
            panic!("fault-injection: put-link on poison-pill");
        }
        with_plugin(|p| p.put_link(&mut HostStore, &mut HostNotifier, link.into())).map(Into::into)
    }

    fn delete_link(
        source_id: String,
        wit_namespace: String,
        wit_package: String,
        name: Option<String>,
    ) -> Result<w::DeleteLinkResult, wt::SpecError> {
        with_plugin(|p| {
            p.delete_link(
                &mut HostStore,
                &mut HostNotifier,
                &source_id,
                &wit_namespace,
                &wit_package,
                name.as_deref(),
            )
        })
        .map(Into::into)
    }

    fn list_links() -> Result<w::LinkListing, wt::SpecError> {
        with_plugin(|p| p.list_links(&mut HostStore)).map(Into::into)
    }

    fn reload_from_store() -> Result<w::ReloadReport, wt::SpecError> {
        with_plugin(|p| p.reload_from_store(&mut HostStore)).map(Into::into)
    }

    fn snapshot_table() -> Vec<w::TableEntry> {
        with_plugin(|p| Ok(p.snapshot_table()))
            .map(|entries| entries.into_iter().map(Into::into).collect())
            .unwrap_or_default()
    }

    fn restore_table(entries: Vec<w::TableEntry>) -> Result<(), wt::SpecError> {
        with_plugin(|p| p.restore_table(entries.into_iter().map(Into::into).collect()))
    }
}

// ---- WIT → native -------------------------------------------------------

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

impl From<w::TableEntry> for TableEntry {
    fn from(e: w::TableEntry) -> Self {
        TableEntry {
            id: e.id,
            links: e.links.into_iter().map(Into::into).collect(),
        }
    }
}

// ---- native → WIT -------------------------------------------------------

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

fn links_out(links: Vec<Link>) -> Vec<wt::Link> {
    links.into_iter().map(Into::into).collect()
}

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

impl From<Delivery> for w::Delivery {
    fn from(d: Delivery) -> Self {
        w::Delivery {
            provider_id: d.provider_id,
            kind: match d.kind {
                DeliveryKind::Put => w::DeliveryKind::Put,
                DeliveryKind::Delete => w::DeliveryKind::Delete,
            },
            link: d.link.into(),
            error: d.error.map(Into::into),
        }
    }
}

impl From<ImportLink> for w::ImportLink {
    fn from(r: ImportLink) -> Self {
        w::ImportLink {
            name: r.name,
            interface: r.interface,
            target: r.target,
        }
    }
}

impl From<UpdateReport> for w::UpdateReport {
    fn from(r: UpdateReport) -> Self {
        w::UpdateReport {
            id: r.id,
            added: links_out(r.added),
            removed: links_out(r.removed),
            deliveries: r.deliveries.into_iter().map(Into::into).collect(),
            import_links: r.import_links.into_iter().map(Into::into).collect(),
            links: links_out(r.links),
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
            update: r.update.into(),
        }
    }
}

impl From<DeleteLinkResult> for w::DeleteLinkResult {
    fn from(r: DeleteLinkResult) -> Self {
        w::DeleteLinkResult {
            removed: links_out(r.removed),
            update: r.update.map(Into::into),
            revision: r.revision,
        }
    }
}

impl From<StoreResult> for w::StoreResult {
    fn from(r: StoreResult) -> Self {
        w::StoreResult {
            revision: r.revision,
            update: r.update.into(),
        }
    }
}

impl From<DeleteSpecResult> for w::DeleteSpecResult {
    fn from(r: DeleteSpecResult) -> Self {
        w::DeleteSpecResult {
            existed: r.existed,
            update: r.update.into(),
        }
    }
}

impl From<TableEntry> for w::TableEntry {
    fn from(e: TableEntry) -> Self {
        w::TableEntry {
            id: e.id,
            links: links_out(e.links),
        }
    }
}

impl From<LinkListing> for w::LinkListing {
    fn from(l: LinkListing) -> Self {
        w::LinkListing {
            links: links_out(l.links),
            undecodable: l.undecodable,
        }
    }
}

impl From<ReloadReport> for w::ReloadReport {
    fn from(r: ReloadReport) -> Self {
        w::ReloadReport {
            loaded: r.loaded,
            links: r.links,
            undecodable: r.undecodable,
        }
    }
}
