//! `spec-host demo`: a scripted session that shows the plugin at work on the
//! chosen store (a local JetStream lattice by default, or `--store memory`):
//! a link put reaching a provider, a conflicting link rejected, a link
//! delete reaching the provider, and the stored JSON.

use std::time::Duration;

use anyhow::Context;
use futures::StreamExt;
use serde_json::json;

use super::backends::Backends;
use spec_embed::backend::memory::RecordingNotifier;
use spec_embed::SpecHost;
use spec_model::{ComponentSpecification, Link};
use spec_nats::subjects;

const COMPONENT: &str = "http_keyvalue_counter";
/// The provider the demo runs "on this host".
pub(crate) const PROVIDER: &str = "kvredis";

/// Where the demo sees what the provider received.
enum ProviderTap {
    Recorded(RecordingNotifier),
    Nats(Vec<async_nats::Subscriber>),
}

impl ProviderTap {
    async fn open(
        backends: &Backends,
        recorder: Option<RecordingNotifier>,
    ) -> anyhow::Result<Self> {
        match (&backends.lattice, recorder) {
            (Some(lattice), _) => {
                let name = &lattice.options.lattice;
                let mut subs = Vec::new();
                for subject in [
                    subjects::link_put(name, PROVIDER),
                    subjects::link_del(name, PROVIDER),
                ] {
                    subs.push(
                        lattice
                            .client
                            .subscribe(subject)
                            .await
                            .context("subscribing as the provider")?,
                    );
                }
                lattice
                    .client
                    .flush()
                    .await
                    .context("flushing the subscriptions")?;
                Ok(ProviderTap::Nats(subs))
            }
            (None, Some(recorder)) => Ok(ProviderTap::Recorded(recorder)),
            (None, None) => anyhow::bail!("the demo needs a recording notifier or a lattice"),
        }
    }

    /// Lines describing what reached the provider so far.
    async fn received(&mut self) -> Vec<String> {
        match self {
            ProviderTap::Recorded(r) => r
                .take()
                .into_iter()
                .map(|r| format!("{:?} {} -> {}", r.kind, r.link.source_id, r.link.target))
                .collect(),
            ProviderTap::Nats(subs) => {
                let mut lines = Vec::new();
                for sub in subs.iter_mut() {
                    while let Ok(Some(msg)) =
                        tokio::time::timeout(Duration::from_millis(300), sub.next()).await
                    {
                        lines.push(format!(
                            "{}: {}",
                            msg.subject,
                            String::from_utf8_lossy(&msg.payload)
                        ));
                    }
                }
                lines
            }
        }
    }
}

async fn stored_json(backends: &Backends, id: &str) -> String {
    match backends.kv.get(&subjects::component_key(id)).await {
        Ok(Some(e)) => String::from_utf8_lossy(&e.value).into_owned(),
        Ok(None) => "(absent)".to_string(),
        Err(e) => format!("(cannot read: {e})"),
    }
}

/// Runs the scripted session.
pub(crate) async fn run(
    host: &SpecHost,
    backends: &Backends,
    recorder: Option<RecordingNotifier>,
    json: bool,
) -> anyhow::Result<()> {
    let mut tap = ProviderTap::open(backends, recorder).await?;
    let version = host.plugin_version();
    let store = match &backends.lattice {
        Some(l) => format!(
            "JetStream bucket {} at {}",
            subjects::spec_bucket(&l.options.lattice),
            l.options.shown_url()
        ),
        None => "in-memory store".to_string(),
    };
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
        json!({ "version": version, "store": store }),
        vec![format!("{version} on {store}; local provider: {PROVIDER}")],
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
            "{} at revision {}",
            subjects::component_key(COMPONENT),
            stored.revision
        )],
    );

    if let Some(lattice) = &backends.lattice {
        // The link names a config; on a lattice the provider receives it
        // resolved from CONFIGDATA_{lattice}.
        let config = bytes::Bytes::from_static(br#"{"url":"redis://127.0.0.1:6379"}"#);
        lattice
            .configs
            .put("redis-url", config)
            .await
            .context("writing the demo's config")?;
        let bucket = subjects::config_bucket(&lattice.options.lattice);
        say(
            "write config redis-url",
            json!({ "bucket": bucket }),
            vec![format!(
                r#"{bucket} redis-url = {{"url":"redis://127.0.0.1:6379"}}"#
            )],
        );
    }

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
    text.extend(
        put.update
            .as_ref()
            .map(super::update_lines)
            .unwrap_or_default(),
    );
    say("put a link to the local provider", json!(put), text);

    let rival = Link::new(COMPONENT, "other-kv", "wasi", "keyvalue", &["store"]);
    let message = match host.put_link(rival).await {
        Ok(_) => anyhow::bail!("the conflicting link was accepted; the plugin is wrong"),
        Err(e) => e.to_string(),
    };
    say(
        "put a conflicting link (same name and interface, other target)",
        json!({ "rejected": message }),
        vec![format!("rejected: {message}")],
    );

    let text = stored_json(backends, COMPONENT).await;
    say(
        "stored JSON (wasmCloud's format)",
        json!({ "json": text }),
        vec![text.clone()],
    );

    let del = host
        .delete_link(COMPONENT, "wasi", "keyvalue", None)
        .await?;
    let mut text = vec![format!("removed {} link(s)", del.removed.len())];
    text.extend(
        del.update
            .as_ref()
            .map(super::update_lines)
            .unwrap_or_default(),
    );
    say("delete the link", json!(del), text);

    let text = stored_json(backends, COMPONENT).await;
    say(
        "stored JSON after the delete",
        json!({ "json": text }),
        vec![text.clone()],
    );

    let seen = tap.received().await;
    say("what the provider received", json!(seen), seen.clone());
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({ "demo": steps }))?
        );
    }
    Ok(())
}
