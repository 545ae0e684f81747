//! Lattice-wide plugin rollouts: a build is pushed once into the lattice,
//! every serving host shadows it on its live traffic, the hosts switch one
//! batch at a time, and a build that misbehaves is rolled back and marked
//! bad everywhere.
//!
//! * [`store`] — where builds (components only) and rollout state live in
//!   JetStream (an object store and a key-value bucket per lattice).
//! * [`shadow`] — a new build run beside the live one with its writes and
//!   deliveries captured, and what it would have done compared.
//! * [`publish`] — pushing a checked build, signed by its issuer.
//! * [`trust`] — signing keys, and what a host accepts.
//! * `agent` — what each serving host does about the desired build.

mod agent;
pub mod publish;
pub mod shadow;
pub mod store;
pub mod trust;

pub use agent::{run, ROLLBACK_FAULTS};
pub use shadow::{RequestOutcome, Shadow};
pub use store::{
    BadBuild, BuildInfo, BuildSignature, Desired, DiffKind, HostRollout, Phase, RolloutError,
    RolloutRecord, Rollouts, ShadowReport, SignedRecord,
};
pub use trust::{SigningKey, Trust};
