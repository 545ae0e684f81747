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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use tokio::sync::watch;

use super::status::Reply;
use super::Service;
use spec_embed::backend::error_chain;

/// How often the census is taken.
pub const EVERY: Duration = Duration::from_secs(2);

/// How long a wasmCloud host seen once keeps counting (its pings may be
/// missed now and then; a host that left stops counting after this).
pub const REMEMBER: Duration = Duration::from_secs(60);

/// How long a spec-host that answered status once (or said it was busy)
/// still counts as serving: a host that answers one census late, or is too
/// busy to report, has not left. One gone for longer has.
pub const SPEC_HOST_GONE_AFTER: Duration = Duration::from_secs(10);

/// The last census.
#[derive(Clone, Debug, Default)]
pub struct Census {
    /// Providers of every spec-host that answered status (this one too).
    pub spec_host_providers: HashSet<String>,
    /// Ids of the spec-hosts that answered status (or "busy") within
    /// [`SPEC_HOST_GONE_AFTER`].
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
    // Spec-hosts by id: when last heard from, and their providers.
    let mut spec_hosts: HashMap<String, (Instant, Vec<String>)> = HashMap::new();
    loop {
        let mut census = Census {
            taken: true,
            ..Census::default()
        };
        census
            .spec_host_providers
            .extend(service.providers.iter().cloned());
        let wait = Duration::from_millis(200);
        match super::status::collect_replies(&client, &options.lattice, wait).await {
            Ok(found) => {
                let now = Instant::now();
                for reply in found {
                    match reply {
                        Reply::Status(s) => {
                            spec_hosts.insert(s.host_id, (now, s.providers));
                        }
                        // Busy: there, with the providers it last reported.
                        Reply::Busy(b) => {
                            spec_hosts.entry(b.host_id).or_insert((now, Vec::new())).0 = now;
                        }
                    }
                }
            }
            Err(e) => tracing::debug!(error = %error_chain(e.as_ref()), "census: status"),
        }
        spec_hosts.retain(|_, (seen, _)| seen.elapsed() < SPEC_HOST_GONE_AFTER);
        for (id, (_, providers)) in &spec_hosts {
            census.spec_hosts.insert(id.clone());
            census.spec_host_providers.extend(providers.iter().cloned());
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
