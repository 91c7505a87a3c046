//! Prometheus metrics in text format for `/metrics`: tool calls, errors and latency
//! histograms per tool, and HTTP requests refused by the transport guards. Outside
//! `server/` so the context (and later the monitors) hold the registry without server types.

use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolOutcome {
    tool: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ToolLabel {
    tool: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

type HistFamily = Family<ToolLabel, Histogram, fn() -> Histogram>;

pub struct Metrics {
    registry: Mutex<Registry>,
    calls: Family<ToolOutcome, Counter>,
    errors: Family<ToolLabel, Counter>,
    latency: HistFamily,
    refused: Family<Reason, Counter>,
}

fn latency_histogram() -> Histogram {
    // 0.1 ms .. ~52 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let calls = Family::<ToolOutcome, Counter>::default();
        let errors = Family::<ToolLabel, Counter>::default();
        let latency: HistFamily = Family::new_with_constructor(latency_histogram);
        let refused = Family::<Reason, Counter>::default();
        let mut registry = Registry::with_prefix("secops_mcp");
        registry.register(
            "tool_calls",
            "Tool calls by tool and outcome (ok, error, invalid_argument)",
            calls.clone(),
        );
        registry.register(
            "tool_errors",
            "Tool calls that returned an error result",
            errors.clone(),
        );
        registry.register(
            "tool_call_duration_seconds",
            "Tool call latency",
            latency.clone(),
        );
        registry.register(
            "http_refused",
            "HTTP requests refused by the transport (unauthorized, origin, host, rate_limited, body_too_large)",
            refused.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            calls,
            errors,
            latency,
            refused,
        }
    }

    pub fn observe_call(&self, tool: &str, outcome: &str, seconds: f64) {
        self.calls
            .get_or_create(&ToolOutcome {
                tool: tool.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
        let label = ToolLabel {
            tool: tool.to_string(),
        };
        if outcome != "ok" {
            self.errors.get_or_create(&label).inc();
        }
        self.latency.get_or_create(&label).observe(seconds);
    }

    pub fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&Reason {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        if prometheus_client::encoding::text::encode(&mut out, &registry).is_err() {
            out.clear();
        }
        out
    }
}
