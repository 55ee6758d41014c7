//! What the echo suite derives from the load generator's raw samples:
//! latency percentiles, a log-scaled latency histogram and the fairness
//! figure (requests served per connection).

use crate::table::{Better, Cell, Row};

/// The `p` quantile (0..=1) of `sorted`, nearest rank; NaN if empty.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64
}

/// Upper edges (µs) of the latency histogram's buckets, log-scaled in
/// 1-2-5 steps: bucket 0 holds latencies under 1 µs, bucket `k` those in
/// [EDGES[k-1], EDGES[k]), the last one everything from 1 s up.
const EDGES: [u32; 19] = [
    1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000,
    200_000, 500_000, 1_000_000,
];

/// Number of buckets (see [`EDGES`]).
pub const BUCKETS: usize = EDGES.len() + 1;

/// Request counts per latency bucket (see [`EDGES`]).
#[derive(Clone, Debug)]
pub struct Histogram(pub [u64; BUCKETS]);

impl Histogram {
    pub fn new() -> Histogram {
        Histogram([0; BUCKETS])
    }

    /// The bucket of a latency of `ns` nanoseconds.
    pub fn bucket(ns: u32) -> usize {
        let us = ns / 1000;
        EDGES.partition_point(|&e| e <= us)
    }

    /// Counts every latency (nanoseconds) of `lat`.
    pub fn add(&mut self, lat: &[u32]) {
        for &ns in lat {
            self.0[Self::bucket(ns)] += 1;
        }
    }

    fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

/// "10–20 µs", "500 µs–1 ms", "≥ 1 s" for bucket `k`.
fn bucket_label(k: usize) -> String {
    let unit = |us: u32| -> (u32, &'static str) {
        match us {
            0..1_000 => (us, "µs"),
            1_000..1_000_000 => (us / 1_000, "ms"),
            _ => (us / 1_000_000, "s"),
        }
    };
    if k == 0 {
        return "< 1 µs".into();
    }
    let (lo, lu) = unit(EDGES[k - 1]);
    match EDGES.get(k) {
        None => format!("≥ {lo} {lu}"),
        Some(&hi) => {
            let (hi, hu) = unit(hi);
            if lu == hu {
                format!("{lo}–{hi} {hu}")
            } else {
                format!("{lo} {lu}–{hi} {hu}")
            }
        }
    }
}

/// Rows of a histogram table: one per bucket from the lowest to the highest
/// bucket any implementation used, each cell "share % (cumulative %)" of
/// that implementation's requests (`None`: no data, with why).
pub fn histogram_rows(hists: &[Result<&Histogram, String>]) -> Vec<Row> {
    let used = |k: usize| hists.iter().flatten().any(|h| h.0[k] > 0);
    let (Some(lo), Some(hi)) = (
        (0..BUCKETS).find(|&k| used(k)),
        (0..BUCKETS).rev().find(|&k| used(k)),
    ) else {
        return Vec::new();
    };
    let mut cum: Vec<u64> = vec![0; hists.len()];
    (lo..=hi)
        .map(|k| Row {
            label: bucket_label(k),
            unit: "% (cum. %)",
            better: Better::Info,
            cells: hists
                .iter()
                .zip(cum.iter_mut())
                .map(|(h, c)| match h {
                    Ok(h) if h.total() > 0 => {
                        *c += h.0[k];
                        let pct = |n: u64| n as f64 / h.total() as f64 * 100.0;
                        if h.0[k] == 0 {
                            Cell::Text(format!("– ({})", pct_text(pct(*c))))
                        } else {
                            Cell::Text(format!("{} ({})", pct_text(pct(h.0[k])), pct_text(pct(*c))))
                        }
                    }
                    Ok(_) => Cell::Na("no request".into()),
                    Err(e) => Cell::Na(e.clone()),
                })
                .collect(),
        })
        .collect()
}

/// A share in %, with enough digits to show a tail of one request in a
/// million, and 100 only when it is exactly all.
fn pct_text(p: f64) -> String {
    if p >= 100.0 {
        "100".into()
    } else if p >= 99.0 {
        // 99.9, 99.99 and 99.999 must not round up to 100.
        let s = format!("{:.4}", p);
        let s = s.trim_end_matches('0').trim_end_matches('.');
        if s == "100" {
            "99.9999".into()
        } else {
            s.into()
        }
    } else if p >= 1.0 {
        format!("{:.1}", p)
    } else if p >= 0.01 {
        format!("{:.2}", p)
    } else if p > 0.0 {
        format!("{:.1e}", p).replace("e-", "e−")
    } else {
        "0".into()
    }
}

/// Fairness of one stretch of load: the fewest, median and most requests
/// any connection had served.
pub fn fairness(per_conn: &[u32]) -> Option<(f64, f64, f64)> {
    if per_conn.is_empty() {
        return None;
    }
    let mut v = per_conn.to_vec();
    v.sort_unstable();
    Some((v[0] as f64, percentile(&v, 0.5), v[v.len() - 1] as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two_of_microseconds() {
        assert_eq!(Histogram::bucket(999), 0);
        assert_eq!(Histogram::bucket(1_000), 1);
        assert_eq!(Histogram::bucket(1_999), 1);
        assert_eq!(Histogram::bucket(2_000), 2);
        assert_eq!(bucket_label(2), "2–5 µs");
        assert_eq!(Histogram::bucket(1_500_000), 10);
        assert_eq!(bucket_label(10), "1–2 ms");
        assert_eq!(bucket_label(9), "500 µs–1 ms");
        assert_eq!(Histogram::bucket(u32::MAX), BUCKETS - 1);
        assert_eq!(bucket_label(BUCKETS - 1), "≥ 1 s");
    }

    #[test]
    fn histogram_rows_span_the_used_buckets_with_cumulative_shares() {
        let mut a = Histogram::new();
        a.add(&[1_500, 1_600, 3_000, 40_000]);
        let rows = histogram_rows(&[Ok(&a), Err("failed".into())]);
        assert_eq!(rows.len(), 5, "1–2 µs up to 20–50 µs");
        assert_eq!(rows[0].label, "1–2 µs");
        let text = |r: &Row| match &r.cells[0] {
            Cell::Text(t) => t.clone(),
            c => panic!("{c:?}"),
        };
        assert_eq!(text(&rows[0]), "50.0 (50.0)");
        assert_eq!(text(&rows[1]), "25.0 (75.0)");
        assert_eq!(text(&rows[2]), "– (75.0)");
        assert_eq!(text(&rows[4]), "25.0 (100)");
        assert!(matches!(rows[0].cells[1], Cell::Na(_)));
    }

    #[test]
    fn tail_shares_do_not_round_to_everything() {
        assert_eq!(pct_text(99.99999), "99.9999");
        assert_eq!(pct_text(99.95), "99.95");
        assert_eq!(pct_text(0.29), "0.29");
        assert_eq!(pct_text(0.001), "1.0e−3");
    }

    #[test]
    fn fairness_is_min_median_max() {
        assert_eq!(fairness(&[5, 1, 9]), Some((1.0, 5.0, 9.0)));
        assert_eq!(fairness(&[]), None);
    }
}
