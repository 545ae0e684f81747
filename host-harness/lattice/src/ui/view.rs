//! What the page shows, kept current by the watchers (`ui::watch`): the
//! specs that decode, those that do not (flagged with their key, never
//! hidden), the configs (secret references without values), the serving
//! hosts, recent changes — and every change sent on as a server-sent event.

use std::collections::{BTreeMap, VecDeque};
use std::sync::RwLock;

use serde::Serialize;
use serde_json::{json, Value};
use spec_model::Link;
use tokio::sync::broadcast;

use crate::serve::status::Status;
use spec_nats::subjects::SECRET_PREFIX;

/// Recent changes kept for a page that opens now.
pub const CHANGES_KEPT: usize = 200;

/// Events waiting for a slow page, at most; a page further behind is cut
/// off and reconnects (then it reads the snapshot again).
pub const EVENTS_QUEUED: usize = 1024;

/// A spec that decodes.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentView {
    /// Its id.
    pub id: String,
    /// Its image reference.
    pub url: String,
    /// Its outbound links.
    pub links: Vec<Link>,
}

/// A stored spec that does not decode.
#[derive(Clone, Debug, Serialize)]
pub struct Undecodable {
    /// Its id.
    pub id: String,
    /// Its key in the bucket.
    pub key: String,
    /// Why it does not decode.
    pub error: String,
}

/// A named configuration.
#[derive(Clone, Debug, Serialize)]
pub struct ConfigView {
    /// Its name.
    pub name: String,
    /// A `SECRET…` reference: its values are never shown.
    pub secret_reference: bool,
    /// Its values; `None` for secret references (and for a value that is
    /// not a map of strings).
    pub values: Option<BTreeMap<String, String>>,
}

/// One line of the recent changes.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    /// When it was seen (RFC 3339).
    pub at: String,
    /// `spec`, `spec-deleted`, `undecodable`, `config`, `config-deleted`,
    /// `link-set` or `link-deleted` (a delivery to a provider).
    pub kind: &'static str,
    /// What happened.
    pub text: String,
}

/// A server-sent event.
#[derive(Clone, Debug)]
pub struct UiEvent {
    /// Its `event:` name.
    pub name: &'static str,
    /// Its `data:`.
    pub data: Value,
}

#[derive(Default)]
struct State {
    connected: bool,
    components: BTreeMap<String, ComponentView>,
    undecodable: BTreeMap<String, Undecodable>,
    configs: BTreeMap<String, ConfigView>,
    hosts: Vec<Status>,
    changes: VecDeque<Change>,
}

/// The lattice as the page sees it.
pub struct View {
    lattice: String,
    state: RwLock<State>,
    events: broadcast::Sender<UiEvent>,
}

fn links_text(n: usize) -> String {
    format!("{n} link{}", if n == 1 { "" } else { "s" })
}

impl View {
    /// An empty view of `lattice`.
    pub fn new(lattice: &str) -> Self {
        View {
            lattice: lattice.to_string(),
            state: RwLock::new(State::default()),
            events: broadcast::channel(EVENTS_QUEUED).0,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, State> {
        // Writers replace whole entries: a poisoned lock holds whole ones.
        self.state.write().unwrap_or_else(|p| p.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<UiEvent> {
        self.events.subscribe()
    }

    fn send(&self, name: &'static str, data: Value) {
        // Nobody listening is fine.
        let _ = self.events.send(UiEvent { name, data });
    }

    fn change(&self, state: &mut State, kind: &'static str, text: String) {
        let change = Change {
            at: crate::rollout::store::now(),
            kind,
            text,
        };
        state.changes.push_back(change.clone());
        while state.changes.len() > CHANGES_KEPT {
            state.changes.pop_front();
        }
        self.send("change", json!(change));
    }

    /// A spec value written to `id`'s key.
    pub fn spec_written(&self, id: &str, value: &[u8]) {
        let mut state = self.write();
        match spec_model::json::decode_spec(value) {
            Ok(spec) => {
                state.undecodable.remove(id);
                let view = ComponentView {
                    id: id.to_string(),
                    url: spec.url,
                    links: spec.links,
                };
                let text = format!("{id}: {}", links_text(view.links.len()));
                self.send("spec", json!(view));
                state.components.insert(id.to_string(), view);
                self.change(&mut state, "spec", text);
            }
            Err(error) => {
                state.components.remove(id);
                let bad = Undecodable {
                    id: id.to_string(),
                    key: spec_model::keys::component_key(id),
                    error,
                };
                let text = format!("{id}: {}", bad.error);
                self.send("undecodable", json!(bad));
                state.undecodable.insert(id.to_string(), bad);
                self.change(&mut state, "undecodable", text);
            }
        }
    }

    /// `id`'s spec deleted or purged.
    pub fn spec_deleted(&self, id: &str) {
        let mut state = self.write();
        let known = state.components.remove(id).is_some() | state.undecodable.remove(id).is_some();
        if known {
            self.send("spec-deleted", json!({ "id": id }));
            self.change(&mut state, "spec-deleted", id.to_string());
        }
    }

    /// Replaces every spec at once (after the watch fell behind).
    pub fn specs_reloaded(&self, specs: Vec<(String, Vec<u8>)>) {
        let ids: Vec<String> = {
            let state = self.read();
            state
                .components
                .keys()
                .chain(state.undecodable.keys())
                .cloned()
                .collect()
        };
        for id in ids {
            if !specs.iter().any(|(i, _)| *i == id) {
                self.spec_deleted(&id);
            }
        }
        for (id, value) in specs {
            self.spec_written(&id, &value);
        }
    }

    /// A config value written.
    pub fn config_written(&self, name: &str, value: &[u8]) {
        let secret_reference = name.starts_with(SECRET_PREFIX);
        let values = if secret_reference {
            None
        } else {
            serde_json::from_slice::<BTreeMap<String, String>>(value).ok()
        };
        let view = ConfigView {
            name: name.to_string(),
            secret_reference,
            values,
        };
        let mut state = self.write();
        self.send("config", json!(view));
        state.configs.insert(name.to_string(), view);
        self.change(&mut state, "config", name.to_string());
    }

    /// A config deleted.
    pub fn config_deleted(&self, name: &str) {
        let mut state = self.write();
        if state.configs.remove(name).is_some() {
            self.send("config-deleted", json!({ "name": name }));
            self.change(&mut state, "config-deleted", name.to_string());
        }
    }

    /// The serving hosts' statuses.
    pub fn hosts(&self, hosts: Vec<Status>) {
        self.send("hosts", json!(hosts));
        self.write().hosts = hosts;
    }

    /// The NATS connection came or went.
    pub fn connected(&self, connected: bool) {
        let mut state = self.write();
        if state.connected != connected {
            state.connected = connected;
            self.send("connection", json!({ "connected": connected }));
        }
    }

    /// Whether the NATS connection is up.
    pub fn is_connected(&self) -> bool {
        self.read().connected
    }

    /// A link change delivered to a provider (`put` false: removed).
    pub fn delivered(&self, provider: &str, put: bool, text: String) {
        let (kind, verb) = match put {
            true => ("link-set", "new link"),
            false => ("link-deleted", "link removed"),
        };
        let mut state = self.write();
        self.change(&mut state, kind, format!("{provider} told: {verb} {text}"));
    }

    /// Everything, for `GET /api/snapshot`.
    pub fn snapshot(&self) -> Value {
        let state = self.read();
        json!({
            "lattice": self.lattice,
            "connected": state.connected,
            "components": state.components.values().collect::<Vec<_>>(),
            "undecodable": state.undecodable.values().collect::<Vec<_>>(),
            "configs": state.configs.values().collect::<Vec<_>>(),
            "hosts": state.hosts,
            "changes": state.changes,
        })
    }

    /// `id`'s spec and the links that point at it; `None` when neither
    /// exists.
    pub fn component(&self, id: &str) -> Option<(Option<ComponentView>, Vec<Link>)> {
        let state = self.read();
        let spec = state.components.get(id).cloned();
        let inbound: Vec<Link> = state
            .components
            .values()
            .flat_map(|c| c.links.iter().filter(|l| l.target == id).cloned())
            .collect();
        if spec.is_none() && inbound.is_empty() && !state.undecodable.contains_key(id) {
            return None;
        }
        Some((spec, inbound))
    }

    /// The lattice's name.
    pub fn lattice(&self) -> &str {
        &self.lattice
    }
}
