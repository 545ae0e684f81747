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

    pub fn listing(&self, listing: &LinkListing) {
        if self.json {
            print_json(listing);
            return;
        }
        for l in &listing.links {
            println!("{l}");
        }
        println!("{} link(s)", listing.links.len());
        for id in &listing.undecodable {
            println!("warning: stored spec of {id} does not decode; skipped");
        }
    }
}
