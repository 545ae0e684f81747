//! The NATS side: connecting to a secured lattice ([`connect`]: credentials,
//! TLS, JetStream domain), JetStream KV behind `keyvalue` ([`kv`]), provider
//! deliveries as NATS messages ([`notify`]), following other hosts through
//! the bucket ([`follow`]), named configs ([`configs`]), wasmCloud's
//! lattice events ([`events`]), a local nats-server ([`server`]) and the
//! one place that spells every bucket name and subject ([`subjects`]).

pub mod configs;
pub mod connect;
pub mod entries;
pub mod events;
pub mod follow;
pub mod kv;
mod lattice;
pub mod notify;
pub mod server;
pub mod subjects;

pub use connect::{Auth, ConnectError, Secret, Tls};
pub use follow::{Follower, FollowerHandle, SpecChange};
pub use kv::JetStreamKv;
pub use lattice::{Lattice, LatticeError, LatticeOptions};
pub use notify::{InterfaceLinkDefinition, LinkDefs, LocalProvider, NatsNotifier};
pub use server::{LocalNatsServer, ServerOptions};
