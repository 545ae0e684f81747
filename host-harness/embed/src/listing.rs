//! Listing every link of a lattice of any size, in pages.
//!
//! The contract's `list-links` reads every spec in one plugin call, under
//! one deadline and into one reply: fine for thousands of components, not
//! for a million (about 500 MB of JSON, minutes of reads). Here the bucket
//! is read as a stream ([`KeyValue::scan`], as a table rebuild reads it)
//! and each stored value is decoded by the plugin on a scratch instance
//! (`apply-stored-spec`, deliveries going nowhere); the links reach the
//! caller a page at a time. Each step has its own deadline (the next value
//! from the store, each plugin call) and a scratch instance serves one page
//! only, so neither time nor memory grows with the lattice.

use std::sync::Arc;

use spec_model::keys::COMPONENT_KEY_PREFIX;
use spec_model::{packed, LinkListing};

use super::host::SpecHost;
use super::rebuild::StoreScan;
use crate::backend::Silent;
use crate::error::CallError;

impl SpecHost {
    /// Every link of every spec in the store, handed to `page` at most
    /// `specs_per_page` specs at a time (at least one), in the store's
    /// order — not sorted, unlike [`SpecHost::list_links`], which needs the
    /// whole listing at once. Ids whose value does not decode are in
    /// their page's `undecodable`. Returns the links and specs listed.
    pub async fn list_links_paged(
        &self,
        specs_per_page: usize,
        mut page: impl FnMut(LinkListing),
    ) -> Result<(u64, u64), CallError> {
        let specs_per_page = specs_per_page.max(1);
        let factory = self.factory();
        let plugin = self.loaded_plugin();
        let (reading, mut values) = StoreScan::start(&factory.kv);
        let step = factory.limits.deadline;
        let mut scratch = None;
        let mut current = LinkListing::default();
        let (mut links, mut specs, mut in_page) = (0u64, 0u64, 0usize);
        loop {
            let next = tokio::time::timeout(step, values.recv())
                .await
                .map_err(|_| CallError::NotReady {
                    reason: format!("the store sent no spec for {step:?} while listing links"),
                })?;
            let Some((key, entry)) = next else { break };
            let Some(id) = key.strip_prefix(COMPONENT_KEY_PREFIX) else {
                continue;
            };
            let instance = match &mut scratch {
                Some(instance) => instance,
                None => {
                    let mut fresh = factory.instantiate(&plugin).await?;
                    fresh.set_notify(Arc::new(Silent));
                    scratch.insert(fresh)
                }
            };
            let out = instance
                .call("apply-stored-spec", async |p, s| {
                    p.apply_stored_spec(s, id, &entry.value).await
                })
                .await;
            match out {
                Ok(update) => match packed::unpack(&update.entry) {
                    Ok(found) => {
                        links += found.len() as u64;
                        current.links.extend(found);
                    }
                    Err(e) => {
                        return Err(CallError::Spec(spec_model::SpecError::Store(
                            spec_model::StoreError::Other(format!(
                                "the plugin returned links of {id} that do not unpack: {e}"
                            )),
                        )))
                    }
                },
                Err(CallError::Spec(_)) => current.undecodable.push(id.to_string()),
                Err(e) => return Err(e),
            }
            specs += 1;
            in_page += 1;
            if in_page == specs_per_page {
                page(std::mem::take(&mut current));
                // A scratch table serves one page: its memory stays small.
                scratch = None;
                in_page = 0;
            }
        }
        reading.finish().await?;
        if in_page > 0 {
            page(current);
        }
        Ok((links, specs))
    }
}
