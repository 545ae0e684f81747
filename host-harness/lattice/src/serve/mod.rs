//! `spec-host serve`: a lattice service that answers wasmCloud's link
//! control requests with the plugin, follows the spec bucket, delivers link
//! changes to its local providers, reports its status and swaps its plugin
//! live.
//!
//! [`serve`] takes an open lattice, a running [`SpecHost`] and a shutdown
//! future, so tests drive it exactly as the binary does. On shutdown it
//! stops taking requests, lets the ones in flight finish, stops the
//! follower and returns.
//!
//! Every request — link put, del, get and status alike — goes through one
//! bounded admission: at most [`Service::max_in_flight`] are handled at
//! once, and one more is answered "busy" at once rather than queued. An
//! admitted request runs concurrently with the others (request instances
//! from the engine's pool); one that cannot get an instance within the
//! call deadline is answered with an error and never run, since its caller
//! has given up by then.

mod admission;
pub mod census;
pub mod config;
pub mod ctl;
pub mod guard;
pub mod reload;
mod service;
pub mod status;

pub use service::{serve, Counters, Service, Swaps, MAX_IN_FLIGHT, READS_IN_FLIGHT, STOP_LIMIT};
pub use status::collect_status;
