//! Logs: human text on stderr, or with `--log-format json` one JSON object
//! per line, each with the lattice and host id (once a host serves) and,
//! inside a request, its `request_id` and `method` at the top level (the
//! full span list stays under `spans`, plugin calls included).

use std::sync::OnceLock;

use clap::ValueEnum;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// The lattice and host id every JSON line carries.
static IDENTITY: OnceLock<(String, String)> = OnceLock::new();

/// Names the lattice and host id for every later JSON line (the first
/// call wins: one process serves one host).
pub fn set_identity(lattice: &str, host_id: &str) {
    let _ = IDENTITY.set((lattice.to_string(), host_id.to_string()));
}

/// Installs the logger: `RUST_LOG` if set, else `default`.
pub fn init(format: LogFormat, default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(Lifted(
                tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(true),
            ))
            .init(),
    }
}

/// The JSON formatter, with identity and request fields lifted to the top.
struct Lifted<F>(F);

impl<S, N, F> FormatEvent<S, N> for Lifted<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.0.format_event(ctx, Writer::new(&mut line), event)?;
        let Ok(serde_json::Value::Object(mut object)) = serde_json::from_str(line.trim_end())
        else {
            // Not what the JSON formatter makes: write it as it is.
            return writer.write_str(&line);
        };
        if let Some((lattice, host_id)) = IDENTITY.get() {
            object.insert("lattice".into(), lattice.as_str().into());
            object.insert("host_id".into(), host_id.as_str().into());
        }
        let request = object
            .get("spans")
            .and_then(|s| s.as_array())
            .and_then(|spans| spans.iter().find(|s| s["name"] == "request"))
            .cloned();
        if let Some(request) = request {
            for field in ["request_id", "method"] {
                if let Some(v) = request.get(field) {
                    object.insert(field.into(), v.clone());
                }
            }
        }
        let out = serde_json::to_string(&object).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{out}")
    }
}
