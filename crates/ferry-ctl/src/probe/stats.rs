//! Round-trip-time summaries: nearest-rank percentiles over samples in
//! microseconds. Pure.

use std::time::Duration;

use serde::Serialize;

/// Percentiles of a set of round-trip times.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RttSummary {
    /// Samples.
    pub samples: usize,
    /// Smallest.
    pub min: Duration,
    /// Median.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Largest.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
}

/// The `p`-th percentile (0–100) of ascending `sorted`, by nearest rank:
/// the smallest sample with at least `p`% of the samples at or below it.
pub fn percentile(sorted: &[u64], p: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Summarizes samples in microseconds; `None` when there are none.
pub fn summarize(samples_us: &[u64]) -> Option<RttSummary> {
    let mut s = samples_us.to_vec();
    s.sort_unstable();
    let us = |p: f64| Duration::from_micros(percentile(&s, p).unwrap_or(0));
    let (first, last) = (s.first()?, s.last()?);
    let sum: u128 = s.iter().map(|&v| u128::from(v)).sum();
    let mean = u64::try_from(sum / s.len() as u128).unwrap_or(u64::MAX);
    Some(RttSummary {
        samples: s.len(),
        min: Duration::from_micros(*first),
        p50: us(50.0),
        p90: us(90.0),
        p99: us(99.0),
        max: Duration::from_micros(*last),
        mean: Duration::from_micros(mean),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 90.0), Some(90));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&v, 0.0), Some(1));
        assert_eq!(percentile(&[7], 99.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
        // Ten samples: p99 is the largest, p50 the fifth.
        let v: Vec<u64> = (1..=10).map(|x| x * 10).collect();
        assert_eq!(percentile(&v, 99.0), Some(100));
        assert_eq!(percentile(&v, 50.0), Some(50));
    }

    #[test]
    fn summary_of_unsorted_samples() {
        let s = summarize(&[300, 100, 200, 1000]).unwrap();
        assert_eq!(s.samples, 4);
        assert_eq!(s.min, Duration::from_micros(100));
        assert_eq!(s.p50, Duration::from_micros(200));
        assert_eq!(s.p99, Duration::from_micros(1000));
        assert_eq!(s.max, Duration::from_micros(1000));
        assert_eq!(s.mean, Duration::from_micros(400));
        assert!(summarize(&[]).is_none());
    }
}
