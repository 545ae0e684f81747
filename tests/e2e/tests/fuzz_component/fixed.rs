//! Fixed cases: 1 MiB strings, repeated megabyte calls under a tight
//! memory cap, a 5,000-link spec, 100,000 levels of nesting, and the
//! regressions found by the fuzz run.

use spec_e2e::{plugin, start_with};
use spec_embed::{CallError, Link, PluginLimits, SpecError};

use super::*;

#[tokio::test]
async fn megabyte_strings_are_handled() {
    let h = host().await;
    let mib = "x".repeat(1 << 20);
    let mut l = store_link("big", "p");
    l.target_config = vec![mib.clone()];
    let big = spec(&mib, vec![l]);
    let stored = typed(
        "store",
        h.host.store_component_spec("big", big.clone()).await,
    );
    assert!(stored.is_ok());
    assert_eq!(
        typed("get", h.host.get_component_spec("big").await),
        Ok(Some(big))
    );

    let named = store_link("big", "q").named(mib.clone());
    let put = typed("put", h.host.put_link(named.clone()).await);
    assert!(put.is_ok(), "{:?}", put.map(|r| r.outcome));
    let deleted = typed(
        "delete",
        h.host
            .delete_link("big", "wasi", "keyvalue", Some(&mib))
            .await,
    );
    assert_eq!(deleted.map(|d| d.result.removed), Ok(vec![named]));

    h.kv.put_raw("COMPONENT_raw", format!("{{\"url\":\"{mib}\"}}"));
    let got = typed("get", h.host.get_component_spec("raw").await);
    assert_eq!(got.map(|s| s.map(|s| s.url.len())), Ok(Some(1 << 20)));

    let huge_id = "é".repeat(1 << 19);
    let got = typed("get", h.host.get_component_spec(&huge_id).await);
    assert!(
        matches!(&got, Err(SpecError::InvalidId(m)) if m.len() < 2_048),
        "{got:?}"
    );
    assert_alive(&h).await;
}

/// Memory stays bounded: forty rounds of megabyte calls fit a 16 MiB cap,
/// so no call keeps what it allocated.
#[tokio::test]
async fn repeated_megabyte_calls_stay_under_a_tight_cap() {
    let limits = PluginLimits {
        memory_cap: 16 << 20,
        ..PluginLimits::default()
    };
    let h = start_with(plugin(), &["p"], limits).await;
    let mib = "x".repeat(1 << 20);
    for i in 0..40 {
        let big = spec(&format!("{mib}{i}"), vec![store_link("big", "p")]);
        let stored = typed(
            "store",
            h.host.store_component_spec("big", big.clone()).await,
        );
        assert!(stored.is_ok(), "round {i}");
        assert_eq!(
            typed("get", h.host.get_component_spec("big").await),
            Ok(Some(big))
        );
        let raw = h.kv.get_raw("COMPONENT_big").expect("stored").value;
        assert!(typed("apply", h.host.apply_stored_spec("big", raw).await).is_ok());
        h.kv.put_raw("COMPONENT_bad", "[".repeat(1 << 20));
        let bad = typed("get", h.host.get_component_spec("bad").await);
        assert!(
            matches!(bad, Err(SpecError::Decode { .. })),
            "round {i}: {bad:?}"
        );
        let listing = typed("list", h.host.list_links().await).expect("list");
        assert_eq!(listing.undecodable, vec!["bad".to_string()]);
    }
    assert_alive(&h).await;
}

fn many_links(n: usize, tag: &str) -> Vec<Link> {
    (0..n)
        .map(|i| {
            let mut l =
                store_link("big", if i % 2 == 0 { "p" } else { "q" }).named(format!("{tag}-{i}"));
            l.target_config = vec![format!("cfg-{i}")];
            l
        })
        .collect()
}

#[tokio::test]
async fn five_thousand_links_are_handled() {
    let h = host().await;
    let big = spec("u", many_links(5_000, "a"));
    let stored = typed(
        "store",
        h.host.store_component_spec("big", big.clone()).await,
    );
    assert_eq!(stored.map(|r| r.report().added.len()), Ok(5_000));
    assert_eq!(
        typed("get", h.host.get_component_spec("big").await),
        Ok(Some(big.clone()))
    );

    let mut next = big.clone();
    next.links[..2_500].clone_from_slice(&many_links(2_500, "b"));
    let updated = typed(
        "store",
        h.host.store_component_spec("big", next.clone()).await,
    );
    let counts = updated.map(|r| (r.report().added.len(), r.report().removed.len()));
    assert_eq!(counts, Ok((2_500, 2_500)));

    assert!(typed("put", h.host.put_link(store_link("big", "p")).await).is_ok());
    let listing = typed("list", h.host.list_links().await).expect("list");
    assert_eq!(listing.links.len(), 5_002);
    let reload = typed("reload", h.host.reload_from_store().await).expect("reload");
    assert_eq!((reload.loaded, reload.links), (2, 5_002));
    let raw = h.kv.get_raw("COMPONENT_big").expect("stored").value;
    let applied = typed("apply", h.host.apply_stored_spec("big", raw).await);
    assert_eq!(applied.map(|r| r.links().map(|l| l.len())), Ok(Ok(5_001)));
    let table = typed("snapshot", h.host.snapshot_table().await).expect("snapshot");
    assert_eq!(table.iter().map(|e| e.links.len()).sum::<usize>(), 5_002);
    assert_alive(&h).await;
}

#[tokio::test]
async fn deep_nesting_is_a_decode_error_not_a_trap() {
    let h = host().await;
    for objects in [false, true] {
        for (spot, closed) in [
            (Spot::Top, true),
            (Spot::Top, false),
            (Spot::Links, true),
            (Spot::Extra, false),
        ] {
            let value = nest(100_000, objects, spot, closed);
            h.kv.put_raw("COMPONENT_deep", value.clone());
            let before = h.kv.dump();
            let what = format!("objects={objects} spot={spot:?} closed={closed}");
            let get = typed("get", h.host.get_component_spec("deep").await);
            assert!(
                matches!(get, Err(SpecError::Decode { .. })),
                "{what}: {get:?}"
            );
            let apply = typed("apply", h.host.apply_stored_spec("deep", value).await);
            assert!(
                matches!(apply, Err(SpecError::Decode { .. })),
                "{what}: {apply:?}"
            );
            let put = typed("put", h.host.put_link(store_link("deep", "p")).await);
            assert!(
                matches!(put, Err(SpecError::Decode { .. })),
                "{what}: {put:?}"
            );
            let listing = typed("list", h.host.list_links().await).expect("list");
            assert_eq!(listing.undecodable, vec!["deep".to_string()], "{what}");
            assert_eq!(h.kv.dump(), before, "{what}");
        }
        // Skipping an unknown field does not recurse: any depth decodes.
        h.kv.put_raw("COMPONENT_deep", nest(100_000, objects, Spot::Extra, true));
        let get = typed("get", h.host.get_component_spec("deep").await);
        assert!(matches!(get, Ok(Some(_))), "{get:?}");
    }
    assert_alive(&h).await;
}

// ---- regressions ----------------------------------------------------------

/// A stored spec whose link has no interface (decodes, breaks the rules).
const STORED_INVALID_LINK: &str = r#"{"url":"u","links":[{"source_id":"fz","target":"p","wit_namespace":"wasi","wit_package":"keyvalue","interfaces":[]}]}"#;

#[tokio::test]
async fn regression_stored_invalid_link_does_not_block_new_instances() {
    let h = host().await;
    h.kv.put_raw("COMPONENT_fz", STORED_INVALID_LINK);
    let put = typed(
        "put",
        h.host.put_link(store_link("fz", "q").named("other")).await,
    );
    assert!(put.is_ok(), "{put:?}");
    let swapped = h.host.swap(plugin()).await;
    assert!(swapped.is_ok(), "{swapped:?}");
    assert_alive(&h).await;
}

#[tokio::test]
async fn regression_stored_invalid_link_does_not_block_recovery() {
    let limits = PluginLimits {
        memory_cap: 16 << 20,
        ..PluginLimits::default()
    };
    let h = start_with(plugin(), &["p", "q"], limits).await;
    h.kv.put_raw("COMPONENT_fz", STORED_INVALID_LINK);
    let put = typed(
        "put",
        h.host.put_link(store_link("fz", "q").named("other")).await,
    );
    assert!(put.is_ok(), "{put:?}");
    // A value too big for the cap: the call is stopped, its instance dropped.
    h.kv.put_raw(
        "COMPONENT_huge",
        format!("{{\"url\":\"{}\"}}", "x".repeat(32 << 20)),
    );
    let huge = h.host.get_component_spec("huge").await;
    assert!(
        matches!(huge, Err(CallError::MemoryLimit { .. })),
        "{huge:?}"
    );
    // The next call gets a new instance, with the table restored into it.
    let answer = h.host.get_component_spec("after").await;
    assert!(matches!(answer, Ok(None)), "{answer:?}");
}
