//! `spec-host ui`: a live view of the lattice in the browser — the link
//! graph, configs, serving hosts and recent changes — and link edits
//! through the same control requests `wash` sends.
//!
//! * [`view`] — what the page shows, and the events sent to it;
//! * [`watch`] — what keeps the view current (bucket watches, deliveries,
//!   host status, the NATS connection);
//! * [`api`] — the HTTP API (`API.md` beside this file);
//! * `assets/` — the page, its script and styles, embedded in the binary
//!   (no build step: plain files).
//!
//! The server listens on loopback unless told otherwise: there only this
//! machine's users reach it, and requests must name the server in `Host`
//! and send edits as JSON, so a web page of another site cannot use the
//! operator's browser to reach it. Off loopback every API request must also
//! carry the server's token (generated and printed once, or given).

pub mod api;
mod server;
pub mod view;
pub mod watch;

pub use server::{generate_token, router, serve};
