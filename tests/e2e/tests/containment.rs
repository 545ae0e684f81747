//! A plugin that traps, loops, loops over its imports or hoards memory fails
//! only the call that misbehaved: the host stays up, replaces the instance
//! (restoring the link table when it was the table's owner) and serves the
//! next call; other calls keep being answered meanwhile. Plugins that cannot
//! load, or cannot take over the table, are refused.

use std::time::{Duration, Instant};

use spec_e2e::{
    engine, load, plugin, start, start_with, PLUGIN_ALT_WASM, PLUGIN_FOREIGN_WASM, TRAP_GUEST_WASM,
};
use spec_embed::cache::Lookup;
use spec_embed::{CallError, LoadError, PluginLimits, SpecError};
use spec_model::{Link, StoreError};

fn limits() -> PluginLimits {
    PluginLimits {
        memory_cap: 64 << 20,
        cpu_budget: Duration::from_millis(300),
        deadline: Duration::from_secs(3),
        max_imports: 200,
    }
}

const ONE_LINK_JSON: &[u8] = br#"{"url":"u","links":[{"source_id":"a","target":"b","name":"default","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["store"],"source_config":[],"target_config":[]}]}"#;

#[tokio::test]
async fn a_trap_fails_one_call_and_the_table_survives() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    h.host
        .apply_stored_spec("a", ONE_LINK_JSON.to_vec())
        .await
        .unwrap();
    // A request instance traps: the table (the owner's) is not touched.
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
    // The table owner traps: a fresh owner gets the table from the mirror.
    let err = h
        .host
        .apply_stored_spec("poison", b"x".to_vec())
        .await
        .unwrap_err();
    assert!(err.is_plugin_fault(), "{err:?}");
    let table = h.host.plugin_snapshot().await.unwrap();
    assert_eq!(table.entries.len(), 1);
    assert_eq!(table.entries[0].id, "a");
    assert_eq!(table.entries[0].links, ONE_LINK_JSON.to_vec());
    assert_eq!(h.host.get_component_spec("fine").await.unwrap(), None);
}

#[tokio::test]
async fn an_endless_loop_is_stopped_by_the_cpu_budget() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    let started = Instant::now();
    let err = h.host.get_component_spec("loop").await.unwrap_err();
    assert!(matches!(err, CallError::CpuLimit { .. }), "{err:?}");
    // Not a timing assertion on performance: a loop that was never stopped
    // would hang this test forever, and this bound says so clearly.
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(h.host.get_component_spec("fine").await.unwrap(), None);
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_cap() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    let err = h.host.get_component_spec("oom").await.unwrap_err();
    assert!(
        matches!(err, CallError::MemoryLimit { cap, .. } if cap == 64 << 20),
        "{err:?}"
    );
    assert_eq!(h.host.plugin_version(), "trap-guest 0.2.0");
    assert_eq!(h.host.get_component_spec("fine").await.unwrap(), None);
}

#[tokio::test]
async fn loops_over_imports_are_cut_off_by_the_import_cap() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    for id in ["loop-get", "loop-list", "loop-notify"] {
        let err = h.host.get_component_spec(id).await.unwrap_err();
        assert!(
            matches!(err, CallError::ImportLimit { cap: 200, .. }),
            "{id}: {err:?}"
        );
        assert!(err.is_plugin_fault());
    }
    assert_eq!(h.host.get_component_spec("fine").await.unwrap(), None);
}

#[tokio::test]
async fn a_loop_over_slow_imports_is_cut_off_by_the_deadline() {
    // A store that takes 50 ms per call: the import cap is far away, the
    // CPU budget is never touched (the time is the host's), the deadline
    // stops it.
    let mut tight = limits();
    tight.deadline = Duration::from_millis(600);
    tight.max_imports = 100_000;
    let h = start_with(load(TRAP_GUEST_WASM), &[], tight).await;
    h.kv.set_latency(Duration::from_millis(50));
    let started = Instant::now();
    let err = h.host.get_component_spec("loop-get").await.unwrap_err();
    assert!(
        matches!(err, CallError::Deadline { limit, .. } if limit == Duration::from_millis(600)),
        "{err:?}"
    );
    // The plugin's doing: each store call was quick, there were many.
    assert!(err.is_plugin_fault() && !err.is_backend_stall(), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[tokio::test]
async fn a_deadline_spent_waiting_on_a_stalled_store_is_not_the_plugin_s_fault() {
    // One store call that never answers in time (NATS unreachable, a
    // leader election): the deadline stops the call, and the fault is the
    // backend's — what a rollout must not hold against a build.
    let mut tight = limits();
    tight.deadline = Duration::from_millis(600);
    let h = start_with(plugin(), &[], tight).await;
    h.kv.set_latency(Duration::from_secs(3));
    let err = h.host.get_component_spec("any").await.unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err:?}");
    assert!(err.is_backend_stall(), "{err}");
    assert!(!err.is_plugin_fault(), "{err}");
    assert!(err.to_string().contains("backend call"), "{err}");
}

#[tokio::test]
async fn other_requests_are_answered_while_one_loops_over_its_imports() {
    let mut slow = limits();
    slow.deadline = Duration::from_secs(2);
    slow.max_imports = u32::MAX;
    let h = start_with(load(TRAP_GUEST_WASM), &[], slow).await;
    h.kv.set_latency(Duration::from_millis(1));
    let host = h.host.clone();
    let looping = tokio::spawn(async move { host.get_component_spec("loop-get").await });
    // While it loops (two seconds of store calls), every other request is
    // answered: the loop holds one request instance, not the engine.
    let started = Instant::now();
    let mut answered = 0;
    while !looping.is_finished() && started.elapsed() < Duration::from_secs(10) {
        assert_eq!(h.host.get_component_spec("fine").await.unwrap(), None);
        answered += 1;
    }
    let err = looping.await.unwrap().unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err:?}");
    assert!(answered > 10, "only {answered} answered during the loop");
}

#[tokio::test]
async fn the_plugin_reaches_spec_keys_only() {
    let h = start_with(load(TRAP_GUEST_WASM), &[], limits()).await;
    h.kv.put_raw("CLAIMS_secret", "{}");
    let err = h.host.get_component_spec("read-claims").await.unwrap_err();
    assert!(
        matches!(
            err,
            CallError::Spec(SpecError::Store(StoreError::AccessDenied(ref m))) if m.contains("CLAIMS_secret")
        ),
        "{err:?}"
    );
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
    // Not a component at all: refused before the compiler, saying what it is.
    for (bytes, says) in [
        (&b"\0asm not really"[..], "unknown wasm version/layer"),
        (&b"\0asm\x01\0\0\0"[..], "core WebAssembly module"),
        (&b"hello, world"[..], "does not start with the wasm header"),
    ] {
        let err = engine().load_bytes(bytes).err().expect("refused");
        assert!(
            matches!(&err, LoadError::NotAComponent(why) if why.contains(says)),
            "{err:?}"
        );
    }
    // A component header over garbage: the compiler's refusal.
    let err = engine()
        .load_bytes(b"\0asm\x0d\0\x01\0not really")
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
    let old = h.host.plugin_version();
    let new = h.host.swap(load(PLUGIN_ALT_WASM)).await.unwrap();
    assert_ne!(old, new);
    assert!(new.ends_with("+alt"), "{new}");
    assert_eq!(h.host.plugin_version(), new);
    assert_eq!(h.host.snapshot_table().await.unwrap(), before);
    assert_eq!(h.host.plugin_snapshot().await.unwrap(), h.host.snapshot());
    // Nothing re-delivered by the swap itself.
    assert_eq!(h.notifier.delivered().len(), 1);
}

#[test]
fn a_component_of_another_contract_version_is_refused_by_name() {
    let err = engine()
        .load_file(std::path::Path::new(spec_e2e::WRONG_WIT_GUEST_WASM))
        .err()
        .expect("refused");
    assert!(
        matches!(err, LoadError::Contract { ref found, .. } if found == "lattice:spec@0.1.0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "plugin speaks lattice:spec@0.1.0; this host loads lattice:spec 0.2, 0.3"
    );
}

#[tokio::test]
async fn a_swap_to_a_plugin_that_cannot_restore_is_refused() {
    let h = start(&[]).await;
    // The trap guest traps when asked to restore an entry named "poison".
    h.host
        .put_link(Link::new("poison", "b", "wasi", "keyvalue", &["store"]))
        .await
        .unwrap();
    let version = h.host.plugin_version();
    let before = h.host.snapshot_table().await.unwrap();
    let err = h.host.swap(load(TRAP_GUEST_WASM)).await.unwrap_err();
    assert!(err.is_plugin_fault(), "{err:?}");
    assert_eq!(
        h.host.plugin_version(),
        version,
        "the old plugin keeps serving"
    );
    assert_eq!(h.host.snapshot_table().await.unwrap(), before);
    h.host
        .put_link(Link::new("after", "b", "wasi", "keyvalue", &["store"]))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_swap_to_a_build_that_cannot_read_the_table_is_refused() {
    let h = start(&[]).await;
    h.host
        .put_link(Link::new("a", "b", "wasi", "keyvalue", &["store"]))
        .await
        .unwrap();
    let version = h.host.plugin_version();
    let err = h.host.swap(load(PLUGIN_FOREIGN_WASM)).await.unwrap_err();
    assert!(
        matches!(err, CallError::Incompatible(ref m) if m.contains("[99]")),
        "{err:?}"
    );
    assert_eq!(h.host.plugin_version(), version);
}

fn cache_entries(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

#[test]
fn compiled_plugins_are_cached_and_an_altered_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("compiled");
    let cache = spec_embed::ComponentCache::new(&cache_dir);
    let engine = spec_embed::PluginEngine::new()
        .unwrap()
        .with_cache(cache.clone());
    let bytes = std::fs::read(spec_e2e::PLUGIN_WASM).unwrap();
    let first = engine.load_bytes(&bytes).unwrap();
    let entries = cache_entries(&cache_dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .starts_with(first.digest()));
    assert!(matches!(
        cache.lookup(engine.engine(), first.digest()),
        Lookup::Hit(_)
    ));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache_dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the cache directory is private");
    }
    // Loading again comes from the cache (same digest, no error).
    assert_eq!(engine.load_bytes(&bytes).unwrap().digest(), first.digest());
    // An entry changed after it was written (same length, one byte off)
    // does not match its recorded digest: refused, compiled again.
    let mut altered = std::fs::read(&entries[0]).unwrap();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x01;
    std::fs::write(&entries[0], &altered).unwrap();
    match cache.lookup(engine.engine(), first.digest()) {
        Lookup::Refused(why) => assert!(why.contains("recorded"), "{why}"),
        _ => panic!("an altered entry was trusted"),
    }
    assert_eq!(engine.load_bytes(&bytes).unwrap().digest(), first.digest());
    assert!(matches!(
        cache.lookup(engine.engine(), first.digest()),
        Lookup::Hit(_)
    ));
    // A directory others can write to is not trusted at all.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cache_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        match cache.lookup(engine.engine(), first.digest()) {
            Lookup::Refused(why) => assert!(why.contains("not private"), "{why}"),
            _ => panic!("an entry in a shared directory was trusted"),
        }
    }
}

#[test]
fn the_plugin_imports_exactly_its_contract() {
    let imports = spec_e2e::plugin().imports();
    let expected: Vec<String> = ["keyvalue", "provider-notify", "types"]
        .iter()
        .map(|i| format!("lattice:spec/{i}@0.2.0"))
        .collect();
    assert_eq!(imports, expected, "no wasi:* or anything else");
}
