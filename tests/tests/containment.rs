//! A plugin that traps, loops or hoards memory fails only the call that
//! misbehaved: the host stays up, replaces the instance, restores the link
//! table and serves the next call. Plugins that cannot load are refused.

use std::time::{Duration, Instant};

use spec_e2e::{engine, load, start, start_with, PLUGIN_ALT_WASM, TRAP_GUEST_WASM};
use spec_host::model::{ComponentSpecification, Link};
use spec_host::{CallError, LoadError, PluginLimits};

fn limits() -> PluginLimits {
    PluginLimits {
        memory_cap: 64 << 20,
        cpu_budget: Duration::from_millis(300),
    }
}

fn one_link_spec() -> ComponentSpecification {
    ComponentSpecification {
        url: "u".into(),
        links: vec![Link::new("a", "b", "wasi", "keyvalue", &["store"])],
    }
}

#[tokio::test]
async fn a_trap_fails_one_call_and_the_table_survives() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    h.host
        .update_host_with_spec("a", one_link_spec())
        .await
        .unwrap();
    let err = h.host.get_component_spec("trap").await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Trap {
                call: "get-component-spec",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_plugin_fault());
    // Fresh instance, table restored from the host's mirror.
    let table = h.host.snapshot_table().await.unwrap();
    assert_eq!(table.len(), 1);
    assert_eq!(table[0].links, one_link_spec().links);
    assert_eq!(h.host.get_component_spec("fine").await.unwrap(), None);
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_cpu_budget() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    h.host
        .update_host_with_spec("a", one_link_spec())
        .await
        .unwrap();
    let started = Instant::now();
    let err = h.host.get_component_spec("loop").await.unwrap_err();
    assert!(matches!(err, CallError::CpuLimit { .. }), "{err:?}");
    // Not a timing assertion on performance: a loop that was never stopped
    // would hang this test forever, and this bound says so clearly.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(h.host.snapshot_table().await.unwrap().len(), 1);
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_cap() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    h.host
        .update_host_with_spec("a", one_link_spec())
        .await
        .unwrap();
    let err = h.host.get_component_spec("oom").await.unwrap_err();
    assert!(
        matches!(err, CallError::MemoryLimit { cap, .. } if cap == 64 << 20),
        "{err:?}"
    );
    assert_eq!(h.host.snapshot_table().await.unwrap().len(), 1);
    assert_eq!(h.host.plugin_version().await.unwrap(), "trap-guest 0.1.0");
}

#[tokio::test]
async fn misbehaving_calls_in_parallel_with_good_ones() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let host = h.host.clone();
        tasks.push(tokio::spawn(async move {
            let id = if i % 5 == 0 {
                "trap".to_string()
            } else {
                format!("ok{i}")
            };
            (id.clone(), host.get_component_spec(&id).await)
        }));
    }
    for t in tasks {
        let (id, result) = t.await.unwrap();
        if id == "trap" {
            assert!(result.is_err());
        } else {
            assert_eq!(result.unwrap(), None, "{id}");
        }
    }
}

#[test]
fn garbage_is_refused_at_load() {
    let err = engine()
        .load_bytes(b"\0asm not really")
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Compile { .. }), "{err:?}");
    let err = engine()
        .load_file(std::path::Path::new("/nonexistent/plugin.wasm"))
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Read { .. }), "{err:?}");
}

#[tokio::test]
async fn swap_to_another_build_keeps_the_table() {
    let h = start(&["b"]).await;
    h.host
        .put_link(Link::new("a", "b", "wasi", "keyvalue", &["store"]))
        .await
        .unwrap();
    let before = h.host.snapshot_table().await.unwrap();
    let old = h.host.plugin_version().await.unwrap();
    let new = h.host.swap(load(PLUGIN_ALT_WASM)).await.unwrap();
    assert_ne!(old, new);
    assert!(new.ends_with("+alt"), "{new}");
    assert_eq!(h.host.plugin_version().await.unwrap(), new);
    assert_eq!(h.host.snapshot_table().await.unwrap(), before);
    // Nothing re-delivered by the swap itself.
    assert_eq!(h.notifier.delivered().len(), 1);
}

#[test]
fn a_component_of_another_world_is_refused_at_link_time() {
    let err = engine()
        .load_file(std::path::Path::new(spec_e2e::WRONG_WIT_GUEST_WASM))
        .err()
        .expect("refused");
    assert!(matches!(err, LoadError::Link { .. }), "{err:?}");
}

#[tokio::test]
async fn a_swap_to_a_plugin_that_cannot_restore_is_refused() {
    let h = start(&[]).await;
    // The trap guest traps when asked to restore an entry named "poison".
    h.host
        .put_link(Link::new("poison", "b", "wasi", "keyvalue", &["store"]))
        .await
        .unwrap();
    let version = h.host.plugin_version().await.unwrap();
    let before = h.host.snapshot_table().await.unwrap();
    let err = h.host.swap(load(TRAP_GUEST_WASM)).await.unwrap_err();
    assert!(matches!(err, CallError::Instantiate { .. }), "{err:?}");
    assert_eq!(
        h.host.plugin_version().await.unwrap(),
        version,
        "the old plugin keeps serving"
    );
    assert_eq!(h.host.snapshot_table().await.unwrap(), before);
    h.host
        .put_link(Link::new("after", "b", "wasi", "keyvalue", &["store"]))
        .await
        .unwrap();
}

#[test]
fn compiled_plugins_are_cached_and_a_damaged_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = spec_host::plugin::ComponentCache::new(dir.path());
    let engine = spec_host::PluginEngine::new().unwrap().with_cache(cache);
    let bytes = std::fs::read(spec_e2e::PLUGIN_WASM).unwrap();
    let first = engine.load_bytes(&bytes).unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(first.digest()));
    // Loading again comes from the cache (same digest, no error).
    assert_eq!(engine.load_bytes(&bytes).unwrap().digest(), first.digest());
    // A damaged entry is dropped and the component compiled again.
    std::fs::write(&entries[0], b"garbage").unwrap();
    assert_eq!(engine.load_bytes(&bytes).unwrap().digest(), first.digest());
    assert!(
        std::fs::read(&entries[0]).unwrap().len() > 1000,
        "rewritten"
    );
}

#[test]
fn the_plugin_imports_only_the_contract_and_what_std_forces() {
    let mut allowed: Vec<String> = ["keyvalue", "provider-notify", "types"]
        .iter()
        .map(|i| format!("lattice:spec/{i}@0.1.0"))
        .collect();
    for cli in [
        "environment",
        "exit",
        "stdin",
        "stdout",
        "stderr",
        "terminal-input",
        "terminal-output",
        "terminal-stdin",
        "terminal-stdout",
        "terminal-stderr",
    ] {
        allowed.push(format!("wasi:cli/{cli}@0.2.6"));
    }
    for io in ["error", "poll", "streams"] {
        allowed.push(format!("wasi:io/{io}@0.2.6"));
    }
    let imports = spec_e2e::plugin().imports();
    let extra: Vec<&String> = imports.iter().filter(|i| !allowed.contains(i)).collect();
    assert!(extra.is_empty(), "unexpected imports: {extra:?}");
    assert!(imports.contains(&"lattice:spec/keyvalue@0.1.0".to_string()));
    assert!(imports.contains(&"lattice:spec/provider-notify@0.1.0".to_string()));
}
