//! Keeping acknowledged links stored while wasmCloud v1.9 hosts still
//! write.
//!
//! A v1.9 host writes a spec with a plain get + put, no compare-and-swap
//! (wasmCloud #3260): when two `link.put`s on one component run at once on
//! different hosts, the later write can drop the link the earlier one just
//! stored, after its client was told "successfully set link". spec-host's
//! own writes cannot prevent that — the v1.9 host overwrites blindly.
//!
//! Every host that answers a link request announces it: `linkdef_set`
//! after a stored put, `linkdef_deleted` after a delete (v1.9 and
//! spec-host alike; `spec-host link del` and `spec put` too). The guard of
//! each `spec-host serve` listens to those events — on one subscription,
//! so a put and the delete that followed it are seen in that order — and
//! to the link requests themselves, and keeps, per acknowledged link,
//! whether it is stored:
//!
//! * a link is acted on only once its acknowledgement is *corroborated*:
//!   its `link.put` request was seen on the control subject, or it was seen
//!   stored. An event that nobody's request or write backs (a forged one)
//!   never makes the guard write; it is let go after [`SETTLED`];
//! * a corroborated link, acknowledged and not deleted since, missing from
//!   its source's spec is put back through the plugin (compare-and-swap,
//!   the same put rules: if they refuse it now, it is let go). A stored
//!   link that replaces it — same name and the same target, or an
//!   overlapping interface (the rules allow only one such) — means it was
//!   replaced, not dropped: let go too. A link of the same name to another
//!   target with disjoint interfaces is a separate link and replaces
//!   nothing;
//! * a `linkdef_deleted` for its source, namespace, package and name, or
//!   its source's spec deleted, ends the watch over it;
//! * once it has been stored for [`SETTLED`] (longer than any in-flight
//!   read-modify-write of a v1.9 host can take) it is let go too.
//!
//! The guard acts only while the lattice has wasmCloud hosts (the census
//! sees them answer `host.ping`): spec-hosts write with compare-and-swap
//! and never drop a link, and a guard that acted on a missed
//! `linkdef_deleted` would bring back a deleted link. Until the first
//! census is taken (a few hundred milliseconds after start) it books the
//! acknowledged links without acting, so a load that starts with the host
//! is guarded too.
//!
//! Spec changes come from this host's follower (no second consumer of the
//! bucket); links are checked against this host's table, on a tick, sooner
//! after a change of their source. The book and the memory of requests are
//! bounded ([`MAX_WATCHED`]); a full book sheds its oldest tenth in one
//! pass. Several guards in one lattice may put the same link back; the
//! second finds it stored (nothing written).
//!
//! Parts: `book` (what is watched, and the requests seen), `run` (the
//! task: subscriptions, checks, repairs).

mod book;
mod run;

pub use book::{MAX_WATCHED, SETTLED};
pub use run::{start, GuardStats};
