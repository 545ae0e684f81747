//! Operating a serving host: the admin HTTP endpoint (`/livez`, `/readyz`,
//! `/metrics`), its metrics, and their OTLP export.

pub mod metrics;
pub mod otlp;
pub mod server;
pub mod snapshot;

pub use metrics::{Metrics, Outcome};
pub use otlp::{Mirror, OtlpConfig};
pub use server::{readiness, serve_admin, Readiness};
pub use snapshot::Snapshot;
