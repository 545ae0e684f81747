//! `spec-host`: the command line that runs the lattice component-spec
//! plugin. The pieces it puts together are crates of their own:
//!
//! * `spec-embed` — the contract's host side and the engine (`SpecHost`);
//! * `spec-nats` — the NATS backends, the bucket follower, a local
//!   nats-server;
//! * `spec-lattice` — `serve` (wasmCloud's control requests), rollouts and
//!   the browser view.
//!
//! This crate is [`cli`] (flags, subcommands, output and `demo`) and
//! [`logs`] (text or JSON lines).

pub mod cli;
pub mod logs;
