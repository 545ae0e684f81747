//! Every bucket name and subject the host uses, each built in one place.

/// Bucket holding the lattice's component specs (wasmCloud: `LATTICEDATA_{lattice}`).
pub fn spec_bucket(lattice: &str) -> String {
    format!("LATTICEDATA_{lattice}")
}

/// Object store holding plugin builds (components, signed), by digest.
pub fn plugin_builds(lattice: &str) -> String {
    format!("SPECPLUGINS_{lattice}")
}

/// Bucket holding the desired plugin build and every host's rollout state.
pub fn rollout_bucket(lattice: &str) -> String {
    format!("SPECROLLOUT_{lattice}")
}

/// Bucket holding named configurations (wasmCloud: `CONFIGDATA_{lattice}`).
pub fn config_bucket(lattice: &str) -> String {
    format!("CONFIGDATA_{lattice}")
}

/// Where a provider receives new links: wasmCloud publishes to the
/// provider's key (its xkey public key in real hosts).
pub fn link_put(lattice: &str, provider_key: &str) -> String {
    format!("wasmbus.rpc.{lattice}.{provider_key}.linkdefs.put")
}

/// Where a provider receives removed links: wasmCloud uses the provider id.
pub fn link_del(lattice: &str, provider_id: &str) -> String {
    format!("wasmbus.rpc.{lattice}.{provider_id}.linkdefs.del")
}

/// Config names one link may carry: link requests naming more are refused,
/// and a delivery of a link stored with more reads none of them.
pub const MAX_CONFIG_NAMES: usize = 64;

/// Config names starting with this are secret references, not configs.
pub const SECRET_PREFIX: &str = "SECRET";

/// Spec keys are spelled by `spec_model::keys` (shared with the plugin).
pub use spec_model::keys::{component_key, id_from_key as component_id};

/// wasmCloud's default control topic prefix (its `ctl_topic_prefix`).
pub const DEFAULT_CTL_PREFIX: &str = "wasmbus.ctl";

/// Prefix of wasmCloud's link control subjects: `.put`, `.del`, `.get`
/// follow it. It is also the queue group that spreads requests over hosts.
/// `ctl` is the control topic prefix ([`DEFAULT_CTL_PREFIX`] unless the
/// lattice sets another).
pub fn ctl_link_prefix(ctl: &str, lattice: &str) -> String {
    format!("{ctl}.v1.{lattice}.link")
}

/// Prefix of wasmCloud's config control subjects: `.put.{name}`,
/// `.get.{name}`, `.del.{name}` follow it; also their queue group.
pub fn ctl_config_prefix(ctl: &str, lattice: &str) -> String {
    format!("{ctl}.v1.{lattice}.config")
}

/// wasmCloud hosts answer `host.ping` here (spec-host does not).
pub fn ctl_host_ping(ctl: &str, lattice: &str) -> String {
    format!("{ctl}.v1.{lattice}.host.ping")
}

/// Where wasmCloud hosts publish a lattice event (`linkdef_set`,
/// `config_set`, …), as CloudEvents.
pub fn event(lattice: &str, name: &str) -> String {
    format!("wasmbus.evt.{lattice}.{name}")
}

/// Subject on which every `spec-host serve` of a lattice answers status
/// requests (not queued: each host answers).
pub fn status(lattice: &str) -> String {
    format!("spechost.v1.{lattice}.status")
}
