//! Who else serves the lattice, refreshed every few seconds:
//!
//! * the providers of every `spec-host serve` (their status replies), so
//!   that the id-addressed copies of a link change a request answer sends
//!   (as v1.9 does, for providers on wasmCloud hosts) skip providers whose
//!   own spec-host delivers the change from its table — in store order,
//!   once — and no stale copy from another host can overtake it;
//! * how many wasmCloud hosts answer `host.ping` (spec-host does not):
//!   only then can a host write blindly, and only then does the guard of
//!   acknowledged links act (`serve::guard`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use super::Service;
use spec_embed::backend::error_chain;

/// How often the census is taken.
pub const EVERY: Duration = Duration::from_secs(2);

/// How long a wasmCloud host seen once keeps counting (its pings may be
/// missed now and then; a host that left stops counting after this).
pub const REMEMBER: Duration = Duration::from_secs(60);

/// The last census.
#[derive(Clone, Debug, Default)]
pub struct Census {
    /// Providers of every spec-host that answered status (this one too).
    pub spec_host_providers: HashSet<String>,
    /// Ids of the spec-hosts that answered status.
    pub spec_hosts: HashSet<String>,
    /// wasmCloud hosts that answered `host.ping` within [`REMEMBER`].
    pub wasmcloud_hosts: usize,
    /// Whether this is a census taken (false until the first one is done:
    /// until then nobody knows whether wasmCloud hosts write).
    pub taken: bool,
}

/// Counts the hosts that answer a ping on `subject` within `wait`.
async fn ping(client: &async_nats::Client, subject: &str, wait: Duration) -> anyhow::Result<usize> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await?;
    client
        .publish_with_reply(subject.to_string(), inbox, bytes::Bytes::new())
        .await?;
    client.flush().await?;
    let deadline = tokio::time::Instant::now() + wait;
    let mut hosts = 0;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, replies.next()).await {
        if msg.status.is_none() {
            hosts += 1;
        }
    }
    Ok(hosts)
}

/// Takes the census every [`EVERY`] until `stop` changes.
pub async fn run(service: Arc<Service>, mut stop: watch::Receiver<bool>) {
    let options = &service.lattice.options;
    let ping_subject = spec_nats::subjects::ctl_host_ping(&options.ctl_prefix, &options.lattice);
    let client = service.lattice.client.clone();
    let mut last_wasmcloud: Option<Instant> = None;
    let mut seen_wasmcloud = 0;
    loop {
        let mut census = Census {
            taken: true,
            ..Census::default()
        };
        census
            .spec_host_providers
            .extend(service.providers.iter().cloned());
        match super::collect_status(&client, &options.lattice, Duration::from_millis(200)).await {
            Ok(found) => {
                census
                    .spec_hosts
                    .extend(found.iter().map(|s| s.host_id.clone()));
                census
                    .spec_host_providers
                    .extend(found.into_iter().flat_map(|s| s.providers));
            }
            Err(e) => tracing::debug!(error = %error_chain(e.as_ref()), "census: status"),
        }
        match ping(&client, &ping_subject, Duration::from_millis(200)).await {
            Ok(0) => {}
            Ok(n) => {
                last_wasmcloud = Some(Instant::now());
                seen_wasmcloud = n;
            }
            Err(e) => tracing::debug!(error = %error_chain(e.as_ref()), "census: ping"),
        }
        census.wasmcloud_hosts = match last_wasmcloud {
            Some(at) if at.elapsed() < REMEMBER => seen_wasmcloud,
            _ => 0,
        };
        service.set_census(census);
        tokio::select! {
            _ = stop.changed() => return,
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}
