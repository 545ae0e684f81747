//! Transient store failures are tried again inside the store call, within
//! its bounds, and never become a second write: here the spec bucket's
//! stream is gone for 300 ms (as while a JetStream leader is elected, no
//! stream answers), and reads and writes made meanwhile succeed once it is
//! back; a permanent refusal is not repeated.

use std::time::{Duration, Instant};

use spec_e2e::nats;
use spec_embed::backend::KeyValue;
use spec_nats::{Lattice, LatticeOptions};

const LATTICE: &str = "retry";

#[tokio::test]
async fn writes_and_reads_meeting_no_stream_succeed_once_it_is_back() {
    let n = nats().await;
    let url = n.server.url();
    let lattice = Lattice::open(LatticeOptions::new(&url, LATTICE))
        .await
        .unwrap();
    let kv = lattice.key_value();
    kv.compare_and_swap("COMPONENT_before", b"{}".to_vec(), None)
        .await
        .unwrap();

    let js = async_nats::jetstream::new(lattice.client.clone());
    js.delete_stream(format!("KV_LATTICEDATA_{LATTICE}"))
        .await
        .unwrap();
    let back = tokio::spawn({
        let url = url.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Lattice::open(LatticeOptions::new(&url, LATTICE))
                .await
                .expect("the bucket is made again");
        }
    });
    let started = Instant::now();
    let created = kv
        .compare_and_swap("COMPONENT_during", b"{\"url\":\"\"}".to_vec(), None)
        .await;
    let took = started.elapsed();
    back.await.unwrap();
    let revision = created.unwrap_or_else(|e| panic!("failed after {took:?}: {e}"));
    println!(
        "a create meeting no stream succeeded after {took:?}, {} attempt(s) repeated",
        kv.retries()
    );
    assert!(kv.retries() >= 1, "no attempt was repeated");
    // Written once: the bucket holds it at the revision returned.
    let entry = kv.get("COMPONENT_during").await.unwrap().expect("stored");
    assert_eq!(entry.revision, revision);
    assert_eq!(entry.value, b"{\"url\":\"\"}");
    // A plain put, with nothing in the way, is not repeated.
    let before = kv.retries();
    kv.set("COMPONENT_plain", b"{}".to_vec()).await.unwrap();
    assert_eq!(kv.retries(), before);
}

#[tokio::test]
async fn a_key_the_server_refuses_is_not_tried_again() {
    let n = nats().await;
    let lattice = Lattice::open(LatticeOptions::new(n.server.url(), LATTICE))
        .await
        .unwrap();
    let kv = lattice.key_value();
    let err = kv
        .compare_and_swap("COMPONENT_bad key", b"{}".to_vec(), None)
        .await
        .unwrap_err();
    println!("{err}");
    assert_eq!(kv.retries(), 0);
}
