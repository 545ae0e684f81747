//! Memory budget of the link table: 100,000 links must fit well under the
//! 64 MiB a host gives the plugin. Measured natively with a counting
//! allocator; native pointers are twice as wide as wasm32's, so the
//! component's real footprint is smaller than what is measured here.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use spec_plugin::memory::RecordingNotifier;
use spec_plugin::model::Link;
use spec_plugin::table::LinkTable;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
// Tests in one binary run on several threads; the budget is measured one
// test at a time so their allocations do not mix.
static SERIAL: Mutex<()> = Mutex::new(());

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1024 * 1024;

/// A link shaped like the golden example's, unique per `i`.
fn link(source: &str, i: usize) -> Link {
    Link {
        source_id: source.to_string(),
        target: format!("provider-{}", i % 50),
        name: format!("link-{i}"),
        wit_namespace: "wasi".into(),
        wit_package: "keyvalue".into(),
        interfaces: vec!["atomics".into(), "store".into()],
        source_config: vec![],
        target_config: vec!["redis-url".into(), "SECRET_redis_password".into()],
    }
}

fn measure(build: impl FnOnce(&mut LinkTable, &mut RecordingNotifier)) -> (usize, usize) {
    let mut notifier = RecordingNotifier::new(Vec::<String>::new());
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let mut table = LinkTable::new();
    build(&mut table, &mut notifier);
    let held = LIVE.load(Ordering::Relaxed) - base;
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(table.link_count(), 100_000);
    drop(table);
    (held, peak)
}

#[test]
fn one_id_with_100k_links_fits() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (held, peak) = measure(|t, n| {
        let links: Vec<Link> = (0..100_000)
            .map(|i| link("http_keyvalue_counter", i))
            .collect();
        // The report (added copies, packed entry) is dropped at once.
        drop(t.update("http_keyvalue_counter", &links, n));
    });
    eprintln!("one id: held {} KiB, peak {} KiB", held / 1024, peak / 1024);
    assert!(held < 16 * MIB, "table holds {held} bytes");
}

#[test]
fn many_ids_with_100k_links_fit() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (held, peak) = measure(|t, n| {
        for c in 0..1000 {
            let id = format!("component-{c}");
            let links: Vec<Link> = (0..100).map(|i| link(&id, c * 100 + i)).collect();
            drop(t.update(&id, &links, n));
        }
    });
    eprintln!(
        "1000 ids: held {} KiB, peak {} KiB",
        held / 1024,
        peak / 1024
    );
    assert!(held < 16 * MIB, "table holds {held} bytes");
}
