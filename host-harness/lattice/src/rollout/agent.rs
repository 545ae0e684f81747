//! What each serving host does about the desired build: check the rollout
//! record's and the build's signatures against the issuers it trusts
//! (before anything is compiled), fetch and compile the build itself,
//! shadow it, wait for its turn, switch, watch its failures, and roll back
//! by itself.
//!
//! ```text
//!   record (signed, not older than the one in force)
//!        │            └─(unsigned, untrusted, tampered, replayed)─▶ Refused
//!        ▼
//!   desired ≠ running ─▶ fetch, check signature, compile ─(cannot)─▶ Refused
//!                            │
//!                            ▼
//!                       Shadowing ─(faults or unexpected
//!                            │       differences)────────▶ Rejected, build marked bad
//!                            ▼
//!                         Waiting ─(its turn: the hosts before it in the
//!                            │      order, one batch at a time, settled)
//!                            ▼
//!                        Switched ─(more failures than the old build
//!                            │       in the watch window)─▶ RolledBack, marked bad
//!                            ▼
//!                         Settled
//! ```
//!
//! A build marked bad anywhere stops the rollout everywhere: hosts that
//! switched to it go back to the build they ran before.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{broadcast, watch};

use super::shadow::Shadow;
use super::store::{now, BadBuild, Desired, HostRollout, Phase, Rollouts, SignedRecord};
use super::trust::Trust;
use crate::serve::status::PluginInfo;
use crate::serve::Service;
use spec_embed::backend::error_chain;
use spec_embed::{LoadedPlugin, PluginEngine};
use spec_nats::SpecChange;

/// How often a waiting host looks at the others.
const POLL: Duration = Duration::from_millis(250);

/// How often a shadowing host checks that its rollout is still wanted.
const CHECK: Duration = Duration::from_secs(1);

/// Why a host stopped a rollout it had not switched for.
const CANCELLED: &str = "the rollout was cancelled or replaced before this host switched";

/// Faults of a new build in the watch window that trigger a rollback (when
/// also more than twice the old build's in an equal window).
pub const ROLLBACK_FAULTS: u64 = 3;

struct Agent {
    service: Arc<Service>,
    engine: Arc<PluginEngine>,
    rollouts: Rollouts,
    state: HostRollout,
    /// The build before the switch, kept loaded for a rollback.
    previous: Option<(LoadedPlugin, PluginInfo)>,
    /// Whose signatures this host accepts.
    trust: Trust,
    /// When the record in force was issued: an older one is a replay.
    in_force_ms: u64,
}

impl Agent {
    async fn publish(&mut self, phase: Phase, reason: Option<String>) {
        self.state.phase = phase;
        self.state.reason = reason;
        self.state.running = self.service.plugin_info().digest;
        self.state.at = now();
        self.service.set_rollout(Some(self.state.clone()));
        if let Err(e) = self.rollouts.set_host(&self.state).await {
            tracing::warn!(error = %e, "cannot record the rollout state");
        }
    }

    /// Loads a build: fetched, checked against its digest and its
    /// issuer's signature, and only then compiled, here (never compiled
    /// code from the lattice; this host's private cache may serve it).
    async fn load(&self, digest: &str) -> Result<LoadedPlugin, String> {
        let (bytes, signature) = self
            .rollouts
            .fetch_build(digest)
            .await
            .map_err(|e| e.to_string())?;
        self.trust.check_build(digest, signature.as_ref())?;
        let engine = Arc::clone(&self.engine);
        tokio::task::spawn_blocking(move || engine.load_bytes(&bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| error_chain(&e))
    }

    /// The rollout the stored record asks for, if its signature verifies
    /// and it is not older than the record in force.
    fn accept(&self, signed: &SignedRecord) -> Result<Option<Desired>, String> {
        let record = self.trust.check_record(signed)?;
        if record.issued_at_ms < self.in_force_ms {
            return Err(format!(
                "a rollout record issued at {} ms is older than the one in force ({} ms): a replay",
                record.issued_at_ms, self.in_force_ms
            ));
        }
        Ok(record.desired)
    }

    async fn mark_bad(&self, digest: &str, reason: &str) {
        let bad = BadBuild {
            digest: digest.to_string(),
            reason: reason.to_string(),
            host_id: self.service.host_id.clone(),
            at: now(),
        };
        if let Err(e) = self.rollouts.mark_bad(&bad).await {
            tracing::error!(error = %e, "cannot mark the build bad");
        }
    }

    /// Whether `desired` is still the rollout asked for (a read error
    /// counts as yes: a rollout is not dropped for a NATS hiccup).
    async fn still_desired(&self, desired: &Desired) -> bool {
        match self.rollouts.record().await {
            Ok(Some(signed)) => self.accept(&signed).ok().flatten().as_ref() == Some(desired),
            Ok(None) => false,
            Err(_) => true,
        }
    }

    /// Whether this host may switch now: every host earlier in the order,
    /// by whole batches, has settled — or has left the lattice (it no longer
    /// answers status), so a host that is gone does not hold others up.
    async fn my_turn(&self, desired: &Desired) -> bool {
        let me = &self.service.host_id;
        let position = desired
            .order
            .iter()
            .position(|h| h == me)
            .unwrap_or(desired.order.len());
        let batch = desired.batch.max(1);
        let before = &desired.order[..(position / batch * batch).min(desired.order.len())];
        if before.is_empty() {
            return true;
        }
        let Ok(hosts) = self.rollouts.hosts().await else {
            return false;
        };
        let census = self.service.census();
        let gone = |h: &String| !census.spec_hosts.is_empty() && !census.spec_hosts.contains(h);
        before.iter().all(|h| {
            gone(h)
                || hosts.iter().any(|s| {
                    &s.host_id == h && s.running == desired.digest && s.phase == Phase::Settled
                })
        })
    }

    async fn swap_to(&mut self, plugin: LoadedPlugin) -> Result<String, String> {
        let version = self
            .service
            .host
            .swap(plugin.clone())
            .await
            .map_err(|e| error_chain(&e))?;
        self.service.set_plugin_info(PluginInfo {
            version: version.clone(),
            digest: plugin.digest().to_string(),
            path: None,
        });
        self.service.counters.swaps.fetch_add(1, Ordering::Relaxed);
        Ok(version)
    }

    /// Takes one rollout as far as it goes on this host.
    async fn roll(&mut self, desired: &Desired, changes: &mut broadcast::Receiver<SpecChange>) {
        let digest = desired.digest.clone();
        self.state.target = Some(digest.clone());
        self.state.rollout_at = Some(desired.at.clone());
        self.state.shadow = None;
        let loaded = match self.load(&digest).await {
            Ok(loaded) => loaded,
            Err(reason) => {
                tracing::error!(%digest, %reason, "rollout: build refused");
                self.publish(Phase::Refused, Some(reason)).await;
                return;
            }
        };
        // Shadow, from the live table at one point among its changes (the
        // changes queued before it are skipped by revision).
        let shadow = match self.service.host.handoff().await {
            Ok(table) => {
                Shadow::start(
                    loaded.clone(),
                    Arc::new(self.service.lattice.key_value()),
                    self.service.providers.clone(),
                    self.service.host.limits(),
                    table,
                    desired.expect.clone(),
                )
                .await
            }
            Err(e) => Err(e),
        };
        let shadow = match shadow {
            Ok(shadow) => Arc::new(shadow),
            Err(e) => {
                let reason = format!("cannot take over this host's table: {}", error_chain(&e));
                tracing::error!(%digest, %reason, "rollout: build refused");
                self.publish(Phase::Refused, Some(reason)).await;
                return;
            }
        };
        self.publish(Phase::Shadowing, None).await;
        self.service.set_shadow(Some(Arc::clone(&shadow)));
        let faults_before = self.service.faults();
        let window = Duration::from_secs(desired.shadow_secs);
        let deadline = tokio::time::Instant::now() + window;
        let mut check = tokio::time::interval(CHECK);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => break,
                _ = check.tick() => {
                    if !self.still_desired(desired).await {
                        self.service.set_shadow(None);
                        self.publish(Phase::Idle, Some(CANCELLED.into())).await;
                        return;
                    }
                }
                change = changes.recv() => match change {
                    Ok(c) => shadow.follow(&c.id, c.revision, c.value.as_deref().map(<[u8]>::to_vec), c.report.as_deref()).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => shadow.lagged(n, &self.service.host).await,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
        self.service.set_shadow(None);
        shadow.drain(2 * super::shadow::SHADOW_DEADLINE).await;
        let baseline = self.service.faults().saturating_sub(faults_before);
        let report = shadow.report();
        self.state.shadow = Some(report.clone());
        if report.faults > 0 || report.unexpected > 0 {
            let reason = format!(
                "shadow: {} fault(s), {} unexpected difference(s) in {} comparison(s); {}",
                report.faults,
                report.unexpected,
                report.compared,
                report.examples.first().cloned().unwrap_or_default()
            );
            tracing::error!(%digest, %reason, "rollout: build rejected in shadow");
            self.mark_bad(&digest, &reason).await;
            self.publish(Phase::Rejected, Some(reason)).await;
            return;
        }
        // Wait for the turn.
        self.publish(Phase::Waiting, None).await;
        loop {
            if self.rollouts.bad(&digest).await.ok().flatten().is_some() {
                self.publish(Phase::Rejected, Some("marked bad by another host".into()))
                    .await;
                return;
            }
            if !self.still_desired(desired).await {
                self.publish(Phase::Idle, Some(CANCELLED.into())).await;
                return;
            }
            if self.my_turn(desired).await {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        // Switch.
        let before = (
            self.service.plugin_info(),
            self.service.host.loaded_plugin(),
        );
        if let Err(reason) = self.swap_to(loaded).await {
            self.publish(Phase::Refused, Some(reason)).await;
            return;
        }
        self.previous = Some((before.1, before.0));
        tracing::info!(%digest, "rollout: switched");
        self.publish(Phase::Switched, None).await;
        // Watch the new build's failures against the old one's.
        let faults_at_switch = self.service.faults();
        let watch_until = tokio::time::Instant::now() + Duration::from_secs(desired.watch_secs);
        let scaled_baseline = baseline * desired.watch_secs.max(1) / desired.shadow_secs.max(1);
        loop {
            let faults = self.service.faults().saturating_sub(faults_at_switch);
            if faults >= ROLLBACK_FAULTS && faults > 2 * scaled_baseline {
                let reason = format!(
                    "{faults} plugin faults within {} s of switching (the old build had {baseline} in {} s of shadowing)",
                    desired.watch_secs, desired.shadow_secs
                );
                self.roll_back(&digest, &reason).await;
                return;
            }
            if self.rollouts.bad(&digest).await.ok().flatten().is_some() {
                self.roll_back(&digest, "marked bad by another host").await;
                return;
            }
            if tokio::time::Instant::now() >= watch_until {
                break;
            }
            tokio::time::sleep(POLL).await;
        }
        self.publish(Phase::Settled, None).await;
    }

    async fn roll_back(&mut self, digest: &str, reason: &str) {
        tracing::error!(%digest, %reason, "rollout: rolling back");
        self.mark_bad(digest, reason).await;
        if let Some((old, info)) = self.previous.take() {
            match self.service.host.swap(old).await {
                Ok(_) => {
                    self.service.set_plugin_info(info);
                    self.service.counters.swaps.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "rollback failed; the new build keeps running")
                }
            }
        }
        self.publish(Phase::RolledBack, Some(reason.to_string()))
            .await;
    }
}

/// Runs the rollout agent of `service` until `stop` changes.
pub async fn run(
    service: Arc<Service>,
    engine: Arc<PluginEngine>,
    trust: Trust,
    mut changes: broadcast::Receiver<SpecChange>,
    mut stop: watch::Receiver<bool>,
) {
    let rollouts = match Rollouts::open(&service.lattice).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot open the rollout store; lattice rollouts are off");
            return;
        }
    };
    let mut updates = rollouts.watch().await.ok();
    let mut agent = Agent {
        state: HostRollout {
            host_id: service.host_id.clone(),
            running: service.plugin_info().digest,
            target: None,
            rollout_at: None,
            phase: Phase::Idle,
            shadow: None,
            reason: None,
            at: now(),
        },
        service,
        engine,
        rollouts,
        previous: None,
        trust,
        in_force_ms: 0,
    };
    if let Some(reason) = agent.trust.off_reason() {
        tracing::warn!("{reason}");
        agent.publish(Phase::Off, Some(reason.to_string())).await;
        let _ = stop.changed().await;
        return;
    }
    agent.publish(Phase::Idle, None).await;
    let mut handled: Option<Desired> = None;
    let mut seen: Option<SignedRecord> = None;
    loop {
        let record = agent.rollouts.record().await.ok().flatten();
        let desired = match &record {
            None => None,
            Some(signed) => match agent.accept(signed) {
                Ok(desired) => {
                    if let Some(r) = signed.unverified() {
                        agent.in_force_ms = agent.in_force_ms.max(r.issued_at_ms);
                    }
                    desired
                }
                Err(reason) => {
                    // Refused before anything is fetched or compiled; said
                    // once per record.
                    if seen.as_ref() != Some(signed) {
                        tracing::error!(%reason, "rollout: record refused");
                        agent.state.target = signed
                            .unverified()
                            .and_then(|r| r.desired)
                            .map(|d| d.digest);
                        agent.publish(Phase::Refused, Some(reason)).await;
                    }
                    handled.clone()
                }
            },
        };
        seen = record;
        let running = agent.service.plugin_info().digest;
        if let Some(d) = desired.as_ref().filter(|d| Some(*d) != handled.as_ref()) {
            let bad = agent.rollouts.bad(&d.digest).await.ok().flatten();
            if bad.is_none() && d.digest != running {
                // Shutting down ends a rollout wherever it stands.
                tokio::select! {
                    _ = agent.roll(d, &mut changes) => {}
                    _ = stop.changed() => return,
                }
            }
            handled = Some(d.clone());
        }
        // A build marked bad stops everywhere: back to the old one.
        if agent.previous.is_some() {
            let running = agent.service.plugin_info().digest;
            if agent.rollouts.bad(&running).await.ok().flatten().is_some() {
                agent
                    .roll_back(&running, "marked bad by another host")
                    .await;
            }
        }
        let update = async {
            match updates.as_mut() {
                Some(w) => w.next().await.map(|_| ()),
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => return,
            _ = update => {}
            _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            // Keep the receiver current while idle.
            _ = changes.recv() => {}
        }
    }
}
