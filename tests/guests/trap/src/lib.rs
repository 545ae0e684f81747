//! A deliberately misbehaving plugin for the host's containment tests.
//!
//! It implements the `spec-plugin` world of contract 0.2 (so the tests also
//! load a build of the previous version) with a trivial in-memory table, and
//! misbehaves on chosen ids given to `get-component-spec`:
//! * `trap` panics (a wasm trap), `loop` never returns, `oom` allocates
//!   until memory runs out;
//! * `loop-get` calls `keyvalue.get` forever, `loop-list` calls
//!   `keyvalue.list-keys` forever, `loop-notify` asks for the local
//!   providers forever: a plugin that loops over its imports, which no CPU
//!   budget stops (the time is the host's);
//! * `sleep-get` reads one key and then spins in the guest for a while
//!   (slow, not stuck).
//!
//! Any other id answers `none`. Restoring a table with an entry named
//! `poison` traps; applying a spec for `poison` traps too. Everything else
//! is a plain in-memory table without deliveries.

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cell::RefCell;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "lattice:spec/spec-plugin@0.2.0",
    generate_all,
});

#[cfg(target_arch = "wasm32")]
spec_guest_rt::no_std_runtime!();

use exports::lattice::spec0_2_0::host_table::{
    self as ht, ImportLink, ReloadReport, Snapshot, TableEntry, UpdateReport,
};
use exports::lattice::spec0_2_0::specs::{
    self as w, DeleteLinkResult, DeleteSpecResult, LinkListing, PutLinkResult, Written,
};
use lattice::spec0_2_0::types::{ComponentSpecification, Link, SpecError};
use lattice::spec0_2_0::{keyvalue, provider_notify};

struct Table(RefCell<Vec<TableEntry>>);

// SAFETY: a wasm32 component without threads runs on one thread.
unsafe impl Sync for Table {}

static TABLE: Table = Table(RefCell::new(Vec::new()));

struct BadPlugin;

fn report(entry: Vec<u8>) -> UpdateReport {
    UpdateReport {
        added: Vec::new(),
        removed: Vec::new(),
        delivered: 0,
        failures: Vec::new(),
        entry,
    }
}

fn not_here() -> SpecError {
    SpecError::Conflict("the trap guest does not implement this".to_string())
}

/// Spins without end, in a way the optimiser cannot remove.
fn spin() -> ! {
    let mut n: u64 = 0;
    loop {
        n = n.wrapping_add(1);
        // SAFETY: a write to a local through a valid pointer.
        unsafe { core::ptr::write_volatile(&mut n, n) };
    }
}

impl w::Guest for BadPlugin {
    fn plugin_version() -> String {
        "trap-guest 0.2.0".to_string()
    }

    fn check_link(_: Link) -> Result<(), SpecError> {
        Ok(())
    }

    fn get_component_spec(id: String) -> Result<Option<ComponentSpecification>, SpecError> {
        match id.as_str() {
            "trap" => panic!("trap requested"),
            "loop" => spin(),
            "oom" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(alloc::vec![1u8; 1 << 20]);
                }
            }
            "loop-get" => loop {
                let _ = keyvalue::get("COMPONENT_loop-get");
            },
            "loop-list" => loop {
                let _ = keyvalue::list_keys("COMPONENT_");
            },
            "loop-notify" => loop {
                let _ = provider_notify::local_providers();
            },
            "read-claims" => match keyvalue::get("CLAIMS_secret") {
                Ok(_) => Ok(None),
                Err(e) => Err(SpecError::Store(e)),
            },
            _ => Ok(None),
        }
    }

    fn store_component_spec(_: String, _: ComponentSpecification) -> Result<Written, SpecError> {
        Err(not_here())
    }

    fn delete_component_spec(_: String) -> Result<DeleteSpecResult, SpecError> {
        Err(not_here())
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
}

impl ht::Guest for BadPlugin {
    fn snapshot_formats() -> Vec<u32> {
        alloc::vec![1]
    }

    fn apply_stored_spec(id: String, value: Vec<u8>) -> Result<UpdateReport, SpecError> {
        if id == "poison" {
            panic!("apply of a poisoned id requested");
        }
        let mut t = TABLE.0.borrow_mut();
        t.retain(|e| e.id != id);
        t.push(TableEntry {
            id,
            links: value.clone(),
        });
        Ok(report(value))
    }

    fn update_host_with_spec(
        _: String,
        _: ComponentSpecification,
    ) -> Result<UpdateReport, SpecError> {
        Err(not_here())
    }

    fn remove_host_spec(id: String) -> Result<UpdateReport, SpecError> {
        TABLE.0.borrow_mut().retain(|e| e.id != id);
        Ok(report(Vec::new()))
    }

    fn import_links(_: String) -> Vec<ImportLink> {
        Vec::new()
    }

    fn reload_from_store() -> Result<ReloadReport, SpecError> {
        Err(not_here())
    }

    fn snapshot_table() -> Snapshot {
        Snapshot {
            format: 1,
            entries: TABLE.0.borrow().clone(),
        }
    }

    fn restore_table(snapshot: Snapshot) -> Result<(), SpecError> {
        if snapshot.entries.iter().any(|e| e.id == "poison") {
            panic!("restore of a poisoned table requested");
        }
        *TABLE.0.borrow_mut() = snapshot.entries;
        Ok(())
    }
}

export!(BadPlugin);
