//! Opening a lattice: connecting to NATS, checking the server, and the
//! buckets every host uses.

use std::time::Duration;

use crate::connect::{self, Auth, ConnectError, Tls};
use crate::{server, subjects, Follower, JetStreamKv, LinkDefs, LocalProvider, NatsNotifier};

use async_nats::jetstream::{self, kv::Config, stream::StorageType};

use spec_embed::backend::BoxError;

/// How to reach and use a lattice. Its `Debug` shows the URL redacted and
/// no secret.
#[derive(Clone)]
pub struct LatticeOptions {
    /// Server URL(s), comma-separated for a cluster.
    pub url: String,
    /// Lattice name.
    pub lattice: String,
    /// Replicas of buckets this host creates (existing buckets are used as
    /// they are).
    pub replicas: usize,
    /// Bound on every NATS call.
    pub op_timeout: Duration,
    /// Bound on connecting at start.
    pub connect_timeout: Duration,
    /// Credentials beyond the URL's user info.
    pub auth: Auth,
    /// TLS towards the server.
    pub tls: Tls,
    /// The JetStream domain every bucket, watch and object store is reached
    /// through (`$JS.{domain}.API`): the hub's, when this host connects to a
    /// leaf node. `None`: the server's own JetStream.
    pub js_domain: Option<String>,
    /// Prefix of the control subjects, as wasmCloud's `ctl_topic_prefix`
    /// (default [`subjects::DEFAULT_CTL_PREFIX`]).
    pub ctl_prefix: String,
}

impl std::fmt::Debug for LatticeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatticeOptions")
            .field("url", &self.shown_url())
            .field("lattice", &self.lattice)
            .field("replicas", &self.replicas)
            .field("auth", &self.auth)
            .field("tls", &self.tls)
            .field("js_domain", &self.js_domain)
            .field("ctl_prefix", &self.ctl_prefix)
            .finish_non_exhaustive()
    }
}

impl LatticeOptions {
    /// Defaults for `url` and `lattice`: one replica, 2 s per call.
    pub fn new(url: impl Into<String>, lattice: impl Into<String>) -> Self {
        LatticeOptions {
            url: url.into(),
            lattice: lattice.into(),
            replicas: 1,
            op_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(3),
            auth: Auth::None,
            tls: Tls::default(),
            js_domain: None,
            ctl_prefix: subjects::DEFAULT_CTL_PREFIX.to_string(),
        }
    }

    /// The server URLs as they may be shown (user info redacted).
    pub fn shown_url(&self) -> String {
        connect::redact_url(&self.url)
    }

    /// A JetStream context on `client`, through the domain if one is set.
    pub fn jetstream(&self, client: async_nats::Client) -> jetstream::Context {
        match &self.js_domain {
            Some(domain) => jetstream::ContextBuilder::new()
                .domain(domain.clone())
                .timeout(self.op_timeout)
                .build(client),
            None => jetstream::ContextBuilder::new()
                .timeout(self.op_timeout)
                .build(client),
        }
    }
}

/// Why the lattice could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum LatticeError {
    /// The options are unusable, or the server did not accept the
    /// connection (the message names the cause, once).
    #[error(transparent)]
    Connect(#[from] ConnectError),
    /// No JetStream answered in the domain given.
    #[error(
        "no JetStream answers in domain {domain:?} through {url} ({cause}); check --js-domain"
    )]
    Domain {
        /// The domain.
        domain: String,
        /// The URL, redacted.
        url: String,
        /// What the request got.
        cause: String,
    },
    /// The server is too old for JetStream KV as used here.
    #[error(
        "NATS server at {url} is version {version}; 2.10 or newer is needed ({})",
        server::INSTALL_HINT
    )]
    ServerTooOld {
        /// The URL.
        url: String,
        /// What it reported.
        version: String,
    },
    /// The server has JetStream disabled.
    #[error("NATS server at {url} has JetStream disabled (start it with -js)")]
    NoJetStream {
        /// The URL.
        url: String,
    },
    /// A bucket could not be opened or created.
    #[error("cannot open or create bucket {bucket}")]
    Bucket {
        /// The bucket.
        bucket: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// An open lattice: the connection and its two buckets.
#[derive(Clone)]
pub struct Lattice {
    /// The NATS connection.
    pub client: async_nats::Client,
    /// The options it was opened with.
    pub options: LatticeOptions,
    /// `LATTICEDATA_{lattice}`.
    pub specs: jetstream::kv::Store,
    /// `CONFIGDATA_{lattice}`.
    pub configs: jetstream::kv::Store,
    /// Counts the connection's (re)connects: watchers start anew on a change.
    reconnects: tokio::sync::watch::Receiver<u64>,
    /// Times the server told this client it dropped messages of one of its
    /// subscriptions (a slow consumer).
    slow_consumers: std::sync::Arc<SlowConsumers>,
}

/// Slow-consumer events: counted, and logged at most once per
/// [`SLOW_CONSUMER_LOG_EVERY`] (a flood of them is one line, not one per
/// event).
#[derive(Debug, Default)]
struct SlowConsumers {
    seen: std::sync::atomic::AtomicU64,
    last_logged: std::sync::Mutex<Option<std::time::Instant>>,
}

const SLOW_CONSUMER_LOG_EVERY: Duration = Duration::from_secs(10);

impl SlowConsumers {
    fn seen(&self, sid: u64) {
        let total = self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let mut last = self.last_logged.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_none_or(|at| at.elapsed() >= SLOW_CONSUMER_LOG_EVERY) {
            *last = Some(std::time::Instant::now());
            tracing::warn!(subscription = sid, total, "NATS dropped messages for a subscription this client read too slowly (slow consumer)");
        }
    }
}

impl Lattice {
    /// Connects, checks the server, and opens (or creates) the buckets.
    pub async fn open(options: LatticeOptions) -> Result<Self, LatticeError> {
        let url = options.shown_url();
        let (connect, addrs) = connect::client_options(&options.url, &options.auth, &options.tls)?;
        let (reconnected, reconnects) = tokio::sync::watch::channel(0u64);
        let reconnected = std::sync::Arc::new(reconnected);
        let slow_consumers = std::sync::Arc::new(SlowConsumers::default());
        let slow = std::sync::Arc::clone(&slow_consumers);
        let connect = connect
            .name("spec-host")
            .connection_timeout(options.connect_timeout)
            .request_timeout(Some(options.op_timeout))
            .event_callback(move |event| {
                let reconnected = std::sync::Arc::clone(&reconnected);
                let slow = std::sync::Arc::clone(&slow);
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            reconnected.send_modify(|n| *n += 1);
                            tracing::info!("connected to NATS")
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("disconnected from NATS; reconnecting")
                        }
                        async_nats::Event::SlowConsumer(sid) => slow.seen(sid),
                        other => tracing::debug!(event = %other, "NATS event"),
                    }
                }
            });
        // One try, no retry loop: a refused credential, an unknown CA or a
        // missing client certificate fails at once. Reconnects happen only
        // after this first connection succeeded.
        let client = tokio::time::timeout(
            options.connect_timeout * 2,
            connect.connect(addrs.as_slice()),
        )
        .await
        .map_err(|_| ConnectError::Refused {
            url: url.clone(),
            cause: format!("no answer within {:?}", options.connect_timeout * 2),
        })?
        .map_err(|e| connect::refused(&options.url, &e))?;
        let info = client.server_info();
        match server::parse_version(&info.version) {
            Some(v) if v >= server::MIN_VERSION => {}
            _ => {
                return Err(LatticeError::ServerTooOld {
                    url,
                    version: info.version,
                })
            }
        }
        let js = options.jetstream(client.clone());
        match &options.js_domain {
            // A leaf node has no JetStream of its own: ask the domain's.
            Some(domain) => {
                if let Err(e) = js.query_account().await {
                    return Err(LatticeError::Domain {
                        domain: domain.clone(),
                        url,
                        cause: connect::chain_once(&e),
                    });
                }
            }
            None if !info.jetstream => return Err(LatticeError::NoJetStream { url }),
            None => {}
        }
        let specs = open_bucket(
            &js,
            &subjects::spec_bucket(&options.lattice),
            options.replicas,
        )
        .await?;
        let configs = open_bucket(
            &js,
            &subjects::config_bucket(&options.lattice),
            options.replicas,
        )
        .await?;
        Ok(Lattice {
            client,
            options,
            specs,
            configs,
            reconnects,
            slow_consumers,
        })
    }

    /// Slow-consumer events so far: messages the server dropped because
    /// this client read one of its subscriptions too slowly.
    pub fn slow_consumers(&self) -> u64 {
        self.slow_consumers
            .seen
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A follower of the spec bucket for `host`, which re-creates its watch
    /// as soon as the connection comes back after an outage (rather than
    /// when the watch's idle heartbeat notices, seconds later).
    pub fn follower(&self, host: spec_embed::SpecHost) -> Follower {
        let mut reconnects = self.reconnects.clone();
        reconnects.borrow_and_update();
        Follower::new(self.specs.clone(), host).with_reconnects(reconnects)
    }

    /// The spec bucket as the plugin's `keyvalue` backend.
    pub fn key_value(&self) -> JetStreamKv {
        JetStreamKv::new(
            self.specs.clone(),
            self.client.clone(),
            self.jetstream(),
            self.options.js_domain.as_deref(),
            self.options.op_timeout,
        )
    }

    /// Link definitions published on this lattice.
    pub fn link_defs(&self) -> LinkDefs {
        LinkDefs::new(
            self.client.clone(),
            &self.options.lattice,
            self.configs.clone(),
            self.options.op_timeout,
        )
    }

    /// Provider deliveries for these local providers.
    pub fn notifier(&self, providers: Vec<LocalProvider>) -> NatsNotifier {
        NatsNotifier::new(self.link_defs(), providers)
    }
}

impl Lattice {
    /// A JetStream context on this lattice's connection.
    pub fn jetstream(&self) -> jetstream::Context {
        self.options.jetstream(self.client.clone())
    }

    /// Opens (or creates) another key-value bucket of the lattice.
    pub async fn bucket(&self, name: &str) -> Result<jetstream::kv::Store, LatticeError> {
        open_bucket(&self.jetstream(), name, self.options.replicas).await
    }

    /// Opens (or creates) an object store of the lattice.
    pub async fn object_store(
        &self,
        name: &str,
    ) -> Result<jetstream::object_store::ObjectStore, LatticeError> {
        let js = self.jetstream();
        if let Ok(store) = js.get_object_store(name).await {
            return Ok(store);
        }
        let config = jetstream::object_store::Config {
            bucket: name.to_string(),
            storage: StorageType::File,
            num_replicas: self.options.replicas.max(1),
            ..Default::default()
        };
        match js.create_object_store(config).await {
            Ok(store) => Ok(store),
            // Another host made it in between.
            Err(create) => js
                .get_object_store(name)
                .await
                .map_err(|_| LatticeError::Bucket {
                    bucket: name.to_string(),
                    source: Box::new(create),
                }),
        }
    }
}

/// Opens a bucket as it is, or creates it when it does not exist. An
/// existing bucket's configuration is never changed.
async fn open_bucket(
    js: &jetstream::Context,
    bucket: &str,
    replicas: usize,
) -> Result<jetstream::kv::Store, LatticeError> {
    let open_error = match js.get_key_value(bucket).await {
        Ok(store) => return Ok(store),
        Err(e) => e,
    };
    let config = Config {
        bucket: bucket.to_string(),
        history: 1,
        storage: StorageType::File,
        num_replicas: replicas.max(1),
        ..Default::default()
    };
    // In a cluster JetStream may still be electing its leader right after
    // start: a few bounded tries.
    let mut last = None;
    for attempt in 0..5u32 {
        match js.create_key_value(config.clone()).await {
            Ok(store) => return Ok(store),
            Err(e) => {
                tracing::debug!(bucket, attempt, error = %e, "bucket create failed; retrying");
                last = Some(e);
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt + 1))).await;
            }
        }
    }
    #[derive(Debug, thiserror::Error)]
    #[error("opening failed ({open}); creating failed")]
    struct OpenThenCreate {
        open: String,
        #[source]
        create: Option<jetstream::context::CreateKeyValueError>,
    }
    Err(LatticeError::Bucket {
        bucket: bucket.to_string(),
        source: Box::new(OpenThenCreate {
            open: spec_embed::backend::error_chain(&open_error),
            create: last,
        }),
    })
}
