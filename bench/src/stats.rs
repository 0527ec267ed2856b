//! Summaries of measured samples: percentiles, mean, and the JSON shape of one metric.

use std::time::Duration;

use serde::Serialize;

/// One figure of the benchmark, as written to the JSON report. Latencies carry their
/// percentiles; rates and sizes carry a single value.
#[derive(Debug, Clone, Serialize, serde::Deserialize, Default)]
pub struct Metric {
    pub name: String,
    pub unit: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p99: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p999: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_per_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swaps: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
}

impl Metric {
    /// A latency metric in microseconds from raw samples.
    pub fn latency(name: &str, samples: &mut [Duration]) -> Self {
        samples.sort_unstable();
        let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
        let at = |q: f64| {
            let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(index).copied().map(us)
        };
        let total: Duration = samples.iter().sum();
        Self {
            name: name.to_string(),
            unit: "us".into(),
            p50: at(0.50),
            p99: at(0.99),
            p999: at(0.999),
            max: samples.last().copied().map(us),
            mean: (!samples.is_empty()).then(|| us(total) / samples.len() as f64),
            n: Some(samples.len() as u64),
            ..Self::default()
        }
    }

    /// A single value (a rate, a size).
    pub fn value(name: &str, unit: &str, value: f64, n: u64) -> Self {
        Self {
            name: name.to_string(),
            unit: unit.to_string(),
            value: Some(value),
            n: Some(n),
            ..Self::default()
        }
    }

    /// The figure a ratio is taken on: p99 for latencies, else the value.
    pub fn headline(&self) -> Option<f64> {
        self.p99.or(self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_series() {
        let mut samples: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let metric = Metric::latency("x", &mut samples);
        assert_eq!(metric.p50, Some(501.0));
        assert_eq!(metric.p99, Some(990.0));
        assert_eq!(metric.max, Some(1000.0));
        assert_eq!(metric.mean, Some(500.5));
    }
}
