//! Small statistics over timing samples: medians and nearest-rank
//! percentiles, and time in microseconds. Medians rather than means
//! because this is a noisy shared 2-core machine: one preempted sample
//! must not move a result.

use std::time::{Duration, Instant};

/// Microseconds of a duration, as a float (sub-microsecond kept).
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Microseconds since `since`.
pub fn us_since(since: Instant) -> f64 {
    us(since.elapsed())
}

/// The median of `values`; 0 when there are none (a section that measured
/// nothing reports nothing rather than failing the run).
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The nearest-rank `p`th percentile of `values` (unsorted is fine).
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    // Nearest rank: the smallest value with at least p% of samples at or
    // below it.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted[index]
}

/// `a / b`, or `None` when `b` is zero (nothing measured).
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Whether round `round` runs the plugin first: alternating A/B, B/A so
/// that a drift in machine speed (another build starting, thermal
/// throttling) hits both sides alike.
pub fn plugin_first(round: usize) -> bool {
    round & 1 == 0
}

/// A loopback port free now (bound, then let go): for a child process's
/// listener. Another process could take it in between; the bench's own
/// children are the only listeners it starts.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// The mean of `v` (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[]), 0.0);
        assert_eq!(ratio(1.0, 0.0), None);
    }
}
