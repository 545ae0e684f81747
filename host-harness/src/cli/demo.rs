//! `spec-host demo`: a scripted session on an in-memory store that shows the
//! plugin at work — a link put reaching a provider, a conflicting link
//! rejected, a link delete reaching the provider, and the stored JSON.

use std::sync::Arc;

use anyhow::Context;
use serde_json::json;

use crate::backend::memory::{MemoryKv, RecordingNotifier};
use crate::model::{ComponentSpecification, Link};
use crate::plugin::{LoadedPlugin, PluginLimits, SpecHost};

const COMPONENT: &str = "http_keyvalue_counter";
const PROVIDER: &str = "kvredis";

fn stored_json(kv: &MemoryKv, id: &str) -> String {
    kv.get_raw(&format!("COMPONENT_{id}"))
        .map(|e| String::from_utf8_lossy(&e.value).into_owned())
        .unwrap_or_else(|| "(absent)".to_string())
}

/// Runs the scripted session.
pub(crate) async fn run(
    plugin: LoadedPlugin,
    limits: PluginLimits,
    json: bool,
) -> anyhow::Result<()> {
    let kv = MemoryKv::new();
    let notifier = RecordingNotifier::new([PROVIDER]);
    let host = SpecHost::start(
        plugin,
        Arc::new(kv.clone()),
        Arc::new(notifier.clone()),
        limits,
    )
    .await
    .context("starting the plugin")?;
    let version = host.plugin_version().await?;
    let mut steps = Vec::new();
    let mut say = |title: &str, detail: serde_json::Value, text: Vec<String>| {
        if !json {
            println!("== {title}");
            for line in text {
                println!("   {line}");
            }
        }
        steps.push(json!({ "step": title, "detail": detail }));
    };
    say(
        "plugin loaded",
        json!({ "version": version }),
        vec![format!("{version}; local provider: {PROVIDER}")],
    );

    let spec = ComponentSpecification {
        url: "ghcr.io/wasmcloud/components/http-keyvalue-counter-rust:0.1.0".into(),
        links: Vec::new(),
    };
    let stored = host.store_component_spec(COMPONENT, spec).await?;
    say(
        "store the component's spec",
        json!({ "revision": stored.revision }),
        vec![format!(
            "COMPONENT_{COMPONENT} at revision {}",
            stored.revision
        )],
    );

    let mut link = Link::new(
        COMPONENT,
        PROVIDER,
        "wasi",
        "keyvalue",
        &["atomics", "store"],
    );
    link.target_config = vec!["redis-url".into()];
    let put = host.put_link(link).await?;
    let mut text = vec![format!(
        "outcome {:?}, revision {}",
        put.outcome, put.revision
    )];
    text.extend(super::delivery_lines(&put.update));
    say("put a link to the local provider", json!(put), text);

    let rival = Link::new(COMPONENT, "other-kv", "wasi", "keyvalue", &["store"]);
    let rejected = host.put_link(rival).await;
    let message = match &rejected {
        Ok(_) => anyhow::bail!("the conflicting link was accepted; the plugin is wrong"),
        Err(e) => e.to_string(),
    };
    say(
        "put a conflicting link (same name and interface, other target)",
        json!({ "rejected": message }),
        vec![format!("rejected: {message}")],
    );

    say(
        "stored JSON (wasmCloud's format)",
        json!({ "json": stored_json(&kv, COMPONENT) }),
        vec![stored_json(&kv, COMPONENT)],
    );

    let del = host
        .delete_link(COMPONENT, "wasi", "keyvalue", None)
        .await?;
    let mut text = vec![format!("removed {} link(s)", del.removed.len())];
    if let Some(update) = &del.update {
        text.extend(super::delivery_lines(update));
    }
    say("delete the link", json!(del), text);

    say(
        "stored JSON after the delete",
        json!({ "json": stored_json(&kv, COMPONENT) }),
        vec![stored_json(&kv, COMPONENT)],
    );

    let seen = notifier.delivered();
    say(
        "what the provider received",
        json!(seen
            .iter()
            .map(|r| json!({ "provider": r.provider_id, "kind": r.kind, "link": r.link }))
            .collect::<Vec<_>>()),
        seen.iter()
            .map(|r| format!("{:?} {} -> {}", r.kind, r.link.source_id, r.link.target))
            .collect(),
    );
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "demo": steps }))?
        );
    }
    Ok(())
}
