//! Contract 0.3 beside 0.2: the host loads builds of both, they answer
//! every call alike (same results, same stored bytes, same deliveries,
//! same table), and a running host moves from one to the other and back
//! with its table.

use spec_e2e::{load, plugin, start_with, MemoryHost, PLUGIN_V0_2_WASM};
use spec_embed::PluginLimits;
use spec_model::{ComponentSpecification, Link};

/// A small deterministic generator (xorshift), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

const IDS: &[&str] = &["app", "api", "kv", "blob", "p1", "p2"];
const PROVIDERS: &[&str] = &["p1", "p2", "kv"];

fn random_link(rng: &mut Rng) -> Link {
    let mut link = Link::new(
        rng.pick(IDS),
        rng.pick(IDS),
        rng.pick(&["wasi", "wasmcloud"]),
        rng.pick(&["keyvalue", "blobstore", "messaging"]),
        &[rng.pick(&["store", "atomics", "handler"])],
    );
    link.name = rng.pick(&["default", "default", "other"]).to_string();
    if rng.next().is_multiple_of(4) {
        link.target_config = vec![rng.pick(&["url", "SECRET_pw"]).to_string()];
    }
    if rng.next().is_multiple_of(20) {
        // Invalid: both builds must refuse it with the same error.
        link.wit_package.clear();
    }
    link
}

/// One operation, run on a host; its outcome as text (results and typed
/// errors alike).
async fn step(h: &MemoryHost, rng: &mut Rng, op: u64) -> String {
    let id = rng.pick(IDS);
    match op % 10 {
        0..=3 => format!("{:?}", h.host.put_link(random_link(rng)).await),
        4 => {
            let (ns, pkg) = (rng.pick(&["wasi"]), rng.pick(&["keyvalue", "blobstore"]));
            let name = [None, Some("other")][(rng.next() % 2) as usize];
            format!("{:?}", h.host.delete_link(id, ns, pkg, name).await)
        }
        5 => {
            let links = (0..rng.next() % 4).map(|_| random_link(rng)).collect();
            let spec = ComponentSpecification {
                url: format!("oci://{id}"),
                links,
            };
            format!("{:?}", h.host.store_component_spec(id, spec).await)
        }
        6 => format!("{:?}", h.host.delete_component_spec(id).await),
        7 => format!("{:?}", h.host.get_component_spec(id).await),
        8 => {
            // Another writer's value, sometimes corrupt, applied as a
            // follower would.
            let value: &[u8] = match rng.next() % 3 {
                0 => b"{not json",
                1 => br#"{"url":"u","links":[{"source_id":"x","target":"p1","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":["store"]}]}"#,
                _ => br#"{"url":"u","links":[]}"#,
            };
            format!("{:?}", h.host.apply_stored_spec(id, value.to_vec()).await)
        }
        _ => format!(
            "{:?} {:?}",
            h.host.list_links().await,
            h.host.import_links(id).await
        ),
    }
}

/// Everything a host holds that a caller can see.
async fn state(h: &MemoryHost) -> String {
    format!(
        "store {:?}\ntable {:?}\nplugin table {:?}\ndeliveries {:?}",
        h.kv.dump(),
        h.host.snapshot(),
        h.host.plugin_snapshot().await,
        h.notifier
            .take()
            .iter()
            .map(|r| format!("{}:{:?}:{:?}", r.provider_id, r.kind, r.link))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn both_versions_load_and_say_which() {
    assert!(
        plugin().contract().starts_with("0.3"),
        "{}",
        plugin().contract()
    );
    let old = load(PLUGIN_V0_2_WASM);
    assert!(old.contract().starts_with("0.2"), "{}", old.contract());
    let h = start_with(old, &[], PluginLimits::default()).await;
    assert!(
        h.host.plugin_version().ends_with("+contract-0.2"),
        "{}",
        h.host.plugin_version()
    );
}

#[tokio::test]
async fn the_versions_answer_every_call_alike() {
    for seed in [0x9e37_79b9_7f4a_7c15u64, 7, 0xdead_beef] {
        let new = start_with(plugin(), PROVIDERS, PluginLimits::default()).await;
        let old = start_with(load(PLUGIN_V0_2_WASM), PROVIDERS, PluginLimits::default()).await;
        let (mut a, mut b) = (Rng(seed), Rng(seed));
        for n in 0..400u64 {
            let op = a.next();
            assert_eq!(op, b.next());
            let got_new = step(&new, &mut a, op).await;
            let got_old = step(&old, &mut b, op).await;
            assert_eq!(got_new, got_old, "seed {seed:#x}, step {n}");
            if n % 50 == 49 {
                assert_eq!(
                    state(&new).await,
                    state(&old).await,
                    "seed {seed:#x}, step {n}"
                );
            }
        }
        assert_eq!(
            state(&new).await,
            state(&old).await,
            "seed {seed:#x}, at the end"
        );
    }
}

#[tokio::test]
async fn a_host_moves_to_the_old_version_and_back_with_its_table() {
    let h = start_with(plugin(), &["kv", "p1"], PluginLimits::default()).await;
    for source in ["a", "b", "c"] {
        h.host
            .put_link(Link::new(source, "kv", "wasi", "keyvalue", &["store"]))
            .await
            .expect("put");
    }
    let before = h.host.snapshot();
    h.notifier.take();

    let version = h.host.swap(load(PLUGIN_V0_2_WASM)).await.expect("to 0.2");
    assert!(version.ends_with("+contract-0.2"), "{version}");
    assert_eq!(h.host.snapshot(), before, "the mirror after the move");
    assert_eq!(h.host.plugin_snapshot().await.expect("table"), before);
    // The old build carries on from the table it was handed: a link
    // already in force is not delivered again, a new one is.
    let again = h
        .host
        .put_link(Link::new("d", "kv", "wasi", "keyvalue", &["store"]))
        .await
        .expect("put on 0.2");
    assert_eq!(again.report().added.len(), 1);
    let deleted = h
        .host
        .delete_link("a", "wasi", "keyvalue", None)
        .await
        .expect("delete on 0.2");
    assert_eq!(deleted.report().removed.len(), 1);

    let version = h.host.swap(plugin()).await.expect("back to 0.3");
    assert!(!version.contains("contract-0.2"), "{version}");
    let put = h
        .host
        .put_link(Link::new("e", "p1", "wasi", "blobstore", &["blobstore"]))
        .await
        .expect("put on 0.3");
    assert_eq!(put.report().added.len(), 1);
    let delivered: Vec<(String, String)> = h
        .notifier
        .take()
        .into_iter()
        .map(|r| (r.provider_id, r.link.source_id))
        .collect();
    assert_eq!(
        delivered,
        [("kv", "d"), ("kv", "a"), ("p1", "e")].map(|(p, s)| (p.to_string(), s.to_string()))
    );
    // The table is still exactly what the store says.
    let table = h.host.snapshot();
    h.host.reload_from_store().await.expect("reload");
    assert_eq!(h.host.plugin_snapshot().await.expect("table"), table);
}
