//! A deliberately misbehaving plugin for the host's containment tests.
//!
//! It implements the `spec-plugin` world with a trivial in-memory table, and
//! misbehaves on chosen ids given to `get-component-spec`:
//! `trap` panics (a wasm trap), `loop` never returns, `oom` allocates until
//! memory runs out. Any other id answers `none`. Restoring a table with an
//! entry named `poison` traps too.

wit_bindgen::generate!({
    path: "../../wit",
    world: "spec-plugin",
    generate_all,
});

use std::cell::RefCell;

use exports::lattice::spec::specs::{
    self as w, DeleteLinkResult, DeleteSpecResult, LinkListing, PutLinkResult, ReloadReport,
    StoreResult, TableEntry, UpdateReport,
};
use lattice::spec::types::{ComponentSpecification, Link, SpecError};

thread_local! {
    static TABLE: RefCell<Vec<TableEntry>> = const { RefCell::new(Vec::new()) };
}

struct BadPlugin;

fn report(id: &str, links: Vec<Link>) -> UpdateReport {
    UpdateReport {
        id: id.to_string(),
        added: Vec::new(),
        removed: Vec::new(),
        deliveries: Vec::new(),
        import_links: Vec::new(),
        links,
    }
}

fn not_here() -> SpecError {
    SpecError::Conflict("the trap guest does not implement this".to_string())
}

impl w::Guest for BadPlugin {
    fn plugin_version() -> String {
        "trap-guest 0.1.0".to_string()
    }

    fn get_component_spec(id: String) -> Result<Option<ComponentSpecification>, SpecError> {
        match id.as_str() {
            "trap" => panic!("trap requested"),
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    // A volatile write keeps the loop from being optimised
                    // into a plain `unreachable`.
                    n = n.wrapping_add(1);
                    unsafe { std::ptr::write_volatile(&mut n, n) };
                }
            }
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                }
            }
            _ => Ok(None),
        }
    }

    fn store_component_spec(
        _: String,
        _: ComponentSpecification,
    ) -> Result<StoreResult, SpecError> {
        Err(not_here())
    }

    fn delete_component_spec(_: String) -> Result<DeleteSpecResult, SpecError> {
        Err(not_here())
    }

    fn update_host_with_spec(
        id: String,
        spec: ComponentSpecification,
    ) -> Result<UpdateReport, SpecError> {
        TABLE.with(|t| {
            let mut t = t.borrow_mut();
            t.retain(|e| e.id != id);
            t.push(TableEntry {
                id: id.clone(),
                links: spec.links.clone(),
            });
        });
        Ok(report(&id, spec.links))
    }

    fn apply_stored_spec(_: String, _: Vec<u8>) -> Result<UpdateReport, SpecError> {
        Err(not_here())
    }

    fn remove_host_spec(id: String) -> Result<UpdateReport, SpecError> {
        TABLE.with(|t| t.borrow_mut().retain(|e| e.id != id));
        Ok(report(&id, Vec::new()))
    }

    fn put_link(_: Link) -> Result<PutLinkResult, SpecError> {
        Err(not_here())
    }

    fn delete_link(
        _: String,
        _: String,
        _: String,
        _: Option<String>,
    ) -> Result<DeleteLinkResult, SpecError> {
        Err(not_here())
    }

    fn list_links() -> Result<LinkListing, SpecError> {
        Err(not_here())
    }

    fn reload_from_store() -> Result<ReloadReport, SpecError> {
        Err(not_here())
    }

    fn snapshot_table() -> Vec<TableEntry> {
        TABLE.with(|t| t.borrow().clone())
    }

    fn restore_table(entries: Vec<TableEntry>) -> Result<(), SpecError> {
        if entries.iter().any(|e| e.id == "poison") {
            panic!("restore of a poisoned table requested");
        }
        TABLE.with(|t| *t.borrow_mut() = entries);
        Ok(())
    }
}

export!(BadPlugin);
