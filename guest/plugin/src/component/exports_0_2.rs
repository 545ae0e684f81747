//! The exports of contract 0.2 (`--features contract-0-2`), each a
//! one-line delegation to [`crate::specs`] and [`crate::host_table`].

use spec_model::SpecError;

use super::bindings::exported::host_table as ht;
use super::bindings::exported::specs as w;
use super::bindings::imported::types as wt;
use super::imports::{with_table, HostNotifier, HostStore};
use crate::host_table::SNAPSHOT_FORMATS;
use crate::prelude::*;
use crate::specs;

/// The exported interfaces.
pub(super) struct SpecPlugin;

type Out<T> = Result<T, wt::SpecError>;

/// Converts a native result into the generated one.
fn out<T, U: From<T>>(r: Result<T, SpecError>) -> Out<U> {
    r.map(Into::into).map_err(Into::into)
}

impl w::Guest for SpecPlugin {
    fn plugin_version() -> String {
        crate::PLUGIN_VERSION.to_string()
    }

    fn check_link(link: wt::Link) -> Out<()> {
        specs::check_link(&link.into()).map_err(Into::into)
    }

    fn get_component_spec(id: String) -> Out<Option<wt::ComponentSpecification>> {
        specs::get_component_spec(&mut HostStore, &id)
            .map(|s| s.map(Into::into))
            .map_err(Into::into)
    }

    fn store_component_spec(id: String, spec: wt::ComponentSpecification) -> Out<w::Written> {
        out(specs::store_component_spec(
            &mut HostStore,
            &id,
            &spec.into(),
        ))
    }

    fn delete_component_spec(id: String) -> Out<w::DeleteSpecResult> {
        out(specs::delete_component_spec(&mut HostStore, &id))
    }

    fn put_link(link: wt::Link) -> Out<w::PutLinkResult> {
        out(specs::put_link(&mut HostStore, &link.into()))
    }

    fn delete_link(
        source_id: String,
        wit_namespace: String,
        wit_package: String,
        name: Option<String>,
    ) -> Out<w::DeleteLinkResult> {
        out(specs::delete_link(
            &mut HostStore,
            &source_id,
            &wit_namespace,
            &wit_package,
            name.as_deref(),
        ))
    }

    fn list_links() -> Out<w::LinkListing> {
        out(specs::list_links(&mut HostStore))
    }
}

impl ht::Guest for SpecPlugin {
    fn snapshot_formats() -> Vec<u32> {
        SNAPSHOT_FORMATS.to_vec()
    }

    fn apply_stored_spec(id: String, value: Vec<u8>) -> Out<ht::UpdateReport> {
        out(with_table(|t| {
            t.apply_stored_spec(&mut HostNotifier, &id, &value)
        }))
    }

    fn update_host_with_spec(
        id: String,
        spec: wt::ComponentSpecification,
    ) -> Out<ht::UpdateReport> {
        let spec = spec.into();
        out(with_table(|t| {
            t.update_host_with_spec(&mut HostNotifier, &id, &spec)
        }))
    }

    fn remove_host_spec(id: String) -> Out<ht::UpdateReport> {
        out(with_table(|t| t.remove_host_spec(&mut HostNotifier, &id)))
    }

    fn import_links(id: String) -> Vec<ht::ImportLink> {
        with_table(|t| Ok(t.import_links(&id)))
            .map(|rows| rows.into_iter().map(Into::into).collect())
            .unwrap_or_default()
    }

    fn reload_from_store() -> Out<ht::ReloadReport> {
        out(with_table(|t| t.reload_from_store(&mut HostStore)))
    }

    fn snapshot_table() -> ht::Snapshot {
        with_table(|t| Ok(t.snapshot_table()))
            .map(Into::into)
            .unwrap_or_else(|_| ht::Snapshot {
                format: spec_model::SNAPSHOT_FORMAT,
                entries: Vec::new(),
            })
    }

    fn restore_table(snapshot: ht::Snapshot) -> Out<()> {
        with_table(|t| t.restore_table(snapshot.into())).map_err(Into::into)
    }
}

super::bindings::export!(SpecPlugin with_types_in super::bindings);
