//! Embedding the spec plugin in a wasmtime host of your own.
//!
//! Everything here is this example's: the store data (`MyState`), the
//! backends (a `HashMap` store and a notifier that prints), the engine and
//! linker. From `spec-embed` it takes only the contract's host side
//! (`embed::add_to_linker`, `exports::Plugin`) and the plugin build.
//!
//! Run: `cargo run -p spec-embed --features bundled --example embed`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use spec_embed::backend::{BackendError, Entry, KeyValue, NotifyError, ProviderNotify};
use spec_embed::embed::{self, SpecCtx, SpecView};
use spec_embed::exports::Plugin;
use spec_embed::Link;
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store};

/// A key-value store with revisions, in a `HashMap`.
#[derive(Default)]
struct TinyKv {
    data: Mutex<(u64, HashMap<String, Entry>)>,
}

#[async_trait]
impl KeyValue for TinyKv {
    async fn get(&self, key: &str) -> Result<Option<Entry>, BackendError> {
        Ok(self.data.lock().unwrap().1.get(key).cloned())
    }
    async fn set(&self, key: &str, value: Vec<u8>) -> Result<u64, BackendError> {
        let mut d = self.data.lock().unwrap();
        d.0 += 1;
        let revision = d.0;
        d.1.insert(key.into(), Entry { value, revision });
        Ok(revision)
    }
    async fn compare_and_swap(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Option<u64>,
    ) -> Result<u64, BackendError> {
        let current = self.data.lock().unwrap().1.get(key).map(|e| e.revision);
        if current != expected {
            return Err(BackendError::RevisionMismatch {
                key: key.into(),
                expected,
            });
        }
        self.set(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<u64, BackendError> {
        let mut d = self.data.lock().unwrap();
        d.1.remove(key);
        d.0 += 1;
        Ok(d.0)
    }
    async fn list_keys(&self, prefix: &str) -> Result<Vec<String>, BackendError> {
        let d = self.data.lock().unwrap();
        Ok(d.1
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect())
    }
}

/// One local provider, `kvredis`, that prints what it is told.
struct Printer;

#[async_trait]
impl ProviderNotify for Printer {
    fn local_providers(&self) -> Vec<String> {
        vec!["kvredis".into()]
    }
    async fn link_put(&self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        println!("{provider} <- put {} -> {}", link.source_id, link.target);
        Ok(())
    }
    async fn link_delete(&self, provider: &str, link: &Link) -> Result<(), NotifyError> {
        println!("{provider} <- delete {} -> {}", link.source_id, link.target);
        Ok(())
    }
}

/// The embedder's own store data; the contract's context is one field.
struct MyState {
    spec: SpecCtx,
}

#[tokio::main]
async fn main() -> wasmtime::Result<()> {
    let engine = Engine::new(&Config::new())?;
    let mut linker = Linker::<MyState>::new(&engine);
    embed::add_to_linker(&mut linker, |s: &mut MyState| SpecView::new(&mut s.spec))?;

    let state = MyState {
        spec: SpecCtx::new(Arc::new(TinyKv::default()), Arc::new(Printer)),
    };
    let mut store = Store::new(&engine, state);
    let component = Component::new(&engine, spec_embed::bundled::PLUGIN)?;
    let plugin = Plugin::instantiate_async(&mut store, &component, &linker).await?;
    println!("loaded {}", plugin.plugin_version(&mut store).await?);

    // Store a link (compare-and-swap in the plugin), then apply what was
    // written to the host-local table: the plugin tells `kvredis`.
    let link = Link::new("echo", "kvredis", "wasi", "keyvalue", &["store"]);
    let put = plugin.put_link(&mut store, &link).await??;
    let written = put.value.unwrap_or_default();
    let report = plugin
        .apply_stored_spec(&mut store, "echo", &written)
        .await??;
    println!(
        "stored at revision {}; {} new link(s), {} delivered",
        put.revision,
        report.added.len(),
        report.delivered
    );
    assert_eq!(report.added, vec![link]);
    // Applying the same value again changes nothing and tells no one.
    let again = plugin
        .apply_stored_spec(&mut store, "echo", &written)
        .await??;
    assert!(again.is_quiet());
    Ok(())
}
