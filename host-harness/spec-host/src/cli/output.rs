//! How command results are printed: readable text, or one JSON document per
//! command with `--json`.

use serde::Serialize;
use serde_json::json;

use super::update_lines;
use spec_embed::Applied;
use spec_model::{
    ComponentSpecification, DeleteLinkResult, DeleteSpecResult, LinkListing, PutLinkResult,
    UpdateReport, Written,
};

pub(crate) struct Printer {
    pub json: bool,
}

pub(crate) fn print_json(value: &impl Serialize) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => println!("{text}"),
        // Every type printed here is plain data with string keys, which
        // serde_json always encodes; this arm is for completeness.
        Err(e) => eprintln!("cannot encode output as JSON: {e}"),
    }
}

impl Printer {
    fn report(&self, report: Option<&UpdateReport>) {
        for line in report.map(update_lines).unwrap_or_default() {
            println!("  {line}");
        }
    }

    pub fn version(&self, version: &str, digest: &str) {
        if self.json {
            print_json(&json!({ "version": version, "digest": digest }));
        } else {
            println!("{version} (sha256 {digest})");
        }
    }

    pub fn spec(&self, id: &str, spec: Option<&ComponentSpecification>) {
        if self.json {
            print_json(&json!({ "id": id, "found": spec.is_some(), "spec": spec }));
            return;
        }
        match spec {
            // Said on stderr, with exit code 3.
            None => {}
            Some(spec) => {
                println!("{id}: url {:?}, {} link(s)", spec.url, spec.links.len());
                for l in &spec.links {
                    println!(
                        "  [{}] {}:{}/{} -> {}",
                        l.name,
                        l.wit_namespace,
                        l.wit_package,
                        l.interfaces.join(","),
                        l.target
                    );
                }
            }
        }
    }

    pub fn stored(&self, id: &str, stored: &Applied<Written>) {
        if self.json {
            print_json(&json!({ "revision": stored.revision, "update": stored.update }));
        } else {
            println!("stored spec of {id} at revision {}", stored.revision);
            self.report(stored.update.as_ref());
        }
    }

    pub fn spec_deleted(&self, id: &str, deleted: &Applied<DeleteSpecResult>) {
        if self.json {
            print_json(deleted);
        } else if deleted.existed {
            println!("deleted spec of {id}");
            self.report(deleted.update.as_ref());
        } else {
            println!("no spec stored for {id}; nothing deleted");
        }
    }

    pub fn link_put(&self, source: &str, put: &Applied<PutLinkResult>) {
        if self.json {
            print_json(&json!({
                "outcome": put.outcome,
                "revision": put.revision,
                "update": put.update,
            }));
        } else {
            println!(
                "link {:?} at revision {} of {source}",
                put.outcome, put.revision
            );
            self.report(put.update.as_ref());
        }
    }

    pub fn link_deleted(&self, del: &Applied<DeleteLinkResult>) {
        if self.json {
            print_json(&json!({
                "removed": del.removed,
                "revision": del.written.as_ref().map(|w| w.revision),
                "update": del.update,
            }));
            return;
        }
        if del.removed.is_empty() {
            println!("no such link; nothing deleted");
        }
        for l in &del.removed {
            println!("deleted link {} -> {} ({})", l.source_id, l.target, l.name);
        }
        self.report(del.update.as_ref());
    }

    pub fn config(&self, name: &str, map: Option<&std::collections::HashMap<String, String>>) {
        if self.json {
            print_json(&json!({ "name": name, "found": map.is_some(), "config": map }));
            return;
        }
        match map {
            // Said on stderr, with exit code 3.
            None => {}
            Some(map) => {
                let mut pairs: Vec<_> = map.iter().collect();
                pairs.sort();
                println!("{name}:");
                for (k, v) in pairs {
                    println!("  {k}={v}");
                }
            }
        }
    }

    pub fn config_deleted(&self, name: &str) {
        if self.json {
            print_json(&json!({ "name": name, "deleted": true }));
        } else {
            println!("deleted configuration {name}");
        }
    }

    pub fn statuses(&self, found: &[spec_lattice::serve::status::Status]) {
        if self.json {
            print_json(&found);
            return;
        }
        // None answering is said on stderr, with exit code 3.
        for s in found {
            println!(
                "{} lattice {} ({}): plugin {} sha256 {}",
                s.host_id, s.lattice, s.bucket, s.plugin.version, s.plugin.digest
            );
            println!(
                "  providers [{}], {} link(s) over {} component(s), up {} s, requests {} ok / {} failed, {} swap(s), {} plugin fault(s)",
                s.providers.join(", "),
                s.links,
                s.components,
                s.uptime_secs,
                s.requests_ok,
                s.requests_failed,
                s.swaps,
                s.faults
            );
            match &s.not_caught_up {
                None => println!("  table caught up"),
                Some(why) => println!("  table NOT caught up: {why}"),
            }
            println!(
                "  table memory {} MiB of {} MiB allowed, {} slow-consumer event(s)",
                s.table_memory >> 20,
                s.table_memory_cap >> 20,
                s.slow_consumers
            );
            if s.wasmcloud_hosts > 0 || s.links_restored > 0 {
                println!(
                    "  beside {} wasmCloud host(s): {} acknowledged link(s) put back after blind writes",
                    s.wasmcloud_hosts, s.links_restored
                );
            }
            if let Some(r) = &s.rollout {
                println!(
                    "  rollout: {:?}{}{}",
                    r.phase,
                    r.target
                        .as_ref()
                        .map(|t| format!(", target {t}"))
                        .unwrap_or_default(),
                    r.reason
                        .as_ref()
                        .map(|why| format!(": {why}"))
                        .unwrap_or_default()
                );
            }
        }
    }

    /// A listing printed page by page as it is read ([`ListingOut`]).
    pub fn listing_out(&self) -> ListingOut {
        ListingOut {
            json: self.json,
            out: std::io::BufWriter::new(std::io::stdout()),
            first: true,
            undecodable: Vec::new(),
            failed: false,
        }
    }
}

/// `link list`'s output, written as the pages come: one link per line, or
/// the same JSON document as [`LinkListing`] (`links`, then
/// `undecodable`), so a listing of a million links is never held whole. A
/// closed stdout (`| head`) ends the output quietly.
pub struct ListingOut {
    json: bool,
    out: std::io::BufWriter<std::io::Stdout>,
    first: bool,
    undecodable: Vec<String>,
    failed: bool,
}

impl ListingOut {
    fn write(&mut self, text: std::fmt::Arguments<'_>) {
        use std::io::Write;
        if !self.failed && self.out.write_fmt(text).is_err() {
            self.failed = true;
        }
    }

    /// One page of the listing.
    pub fn page(&mut self, page: LinkListing) {
        for l in &page.links {
            if self.json {
                let link = serde_json::to_string(l).unwrap_or_default();
                let lead = if self.first {
                    "{\n  \"links\": [\n    "
                } else {
                    ",\n    "
                };
                self.write(format_args!("{lead}{link}"));
            } else {
                self.write(format_args!("{l}\n"));
            }
            self.first = false;
        }
        self.undecodable.extend(page.undecodable);
    }

    /// The end: the count (text) or the rest of the document (JSON).
    pub fn end(mut self, links: u64) {
        use std::io::Write;
        if self.json {
            let undecodable = serde_json::to_string(&self.undecodable).unwrap_or_default();
            let head = if self.first {
                "{\n  \"links\": ["
            } else {
                "\n  "
            };
            self.write(format_args!(
                "{head}],\n  \"undecodable\": {undecodable}\n}}\n"
            ));
        } else {
            self.write(format_args!("{links} link(s)\n"));
            for id in std::mem::take(&mut self.undecodable) {
                self.write(format_args!(
                    "warning: stored spec of {id} does not decode; skipped\n"
                ));
            }
        }
        let _ = self.out.flush();
    }
}
