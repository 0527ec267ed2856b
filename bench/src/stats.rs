//! Summaries of measured samples: percentiles, mean, and the JSON shape of one metric.

use std::time::Duration;

use serde::Serialize;

/// Room for `capacity` latency samples, its pages already written: a timed loop that records
/// into it neither reallocates nor faults a page in until it holds that many. (The BEAM's
/// clients likewise record into an `:atomics` array made before their first call.) Past
/// `capacity` it grows as any vector does.
pub fn sample_buffer(capacity: usize) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(capacity);
    // Not zeros: a zero fill of a fresh allocation may be compiled into `calloc`, which
    // leaves the kernel's fresh pages unwritten.
    samples.resize(capacity, Duration::MAX);
    samples.clear();
    samples
}

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
    /// When the figure is the median of several rounds: how many, and their spread.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounds: Option<Rounds>,
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

    /// The rate of `count` things done in `elapsed`, per second.
    pub fn rate(name: &str, count: usize, elapsed: Duration) -> Self {
        Self::value(
            name,
            "per_s",
            count as f64 / elapsed.as_secs_f64(),
            count as u64,
        )
    }

    /// A rate measured in several rounds: their median, with their spread.
    pub fn median_rate(name: &str, unit: &str, rates: &[f64], n: u64) -> Self {
        let (median, rounds) = Rounds::median_of(rates);
        Self {
            rounds,
            ..Self::value(name, unit, median, n)
        }
    }

    /// The figure a ratio is taken on: p99 for latencies, else the value.
    pub fn headline(&self) -> Option<f64> {
        self.p99.or(self.value)
    }
}

/// How many rounds a figure was measured in, and the lowest and highest of them. On a shared
/// machine one second can run at half the speed of the next: the median of several rounds
/// says what the code does, the spread how much the machine moved meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct Rounds {
    pub n: u64,
    pub min: f64,
    pub max: f64,
}

impl Rounds {
    /// The median of `values` (the mean of the middle two when there is an even number),
    /// and their spread; `NaN` and `None` for no values.
    pub fn median_of(values: &[f64]) -> (f64, Option<Rounds>) {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let (Some(&min), Some(&max)) = (sorted.first(), sorted.last()) else {
            return (f64::NAN, None);
        };
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[middle]
        } else {
            (sorted[middle - 1] + sorted[middle]) / 2.0
        };
        let rounds = Rounds {
            n: sorted.len() as u64,
            min,
            max,
        };
        (median, Some(rounds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_buffer_records_its_capacity_without_moving() {
        let mut samples = sample_buffer(10_000);
        assert!(samples.is_empty());
        let start = samples.as_ptr();
        for i in 0..10_000 {
            samples.push(Duration::from_nanos(i));
        }
        assert_eq!(samples.as_ptr(), start, "recording reallocated the buffer");
        assert_eq!(samples[9_999], Duration::from_nanos(9_999));
    }

    #[test]
    fn percentiles_of_a_known_series() {
        let mut samples: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let metric = Metric::latency("x", &mut samples);
        assert_eq!(metric.p50, Some(501.0));
        assert_eq!(metric.p99, Some(990.0));
        assert_eq!(metric.max, Some(1000.0));
        assert_eq!(metric.mean, Some(500.5));
    }

    #[test]
    fn the_median_of_rounds_ignores_one_slow_round() {
        let (median, rounds) = Rounds::median_of(&[250.0, 90.0, 240.0, 260.0, 245.0]);
        assert_eq!(median, 245.0);
        assert_eq!(
            rounds,
            Some(Rounds {
                n: 5,
                min: 90.0,
                max: 260.0
            })
        );
        assert_eq!(Rounds::median_of(&[1.0, 3.0, 2.0, 10.0]).0, 2.5);
        let (none, no_rounds) = Rounds::median_of(&[]);
        assert!(none.is_nan() && no_rounds.is_none());
    }
}
