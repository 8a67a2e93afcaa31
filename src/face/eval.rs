//! Verification metrics from scored pairs: ROC AUC, equal error rate, true-accept rate at a false-accept rate.

/// Metrics over genuine and impostor scores (higher = more similar).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub genuine: usize,
    pub impostor: usize,
    pub auc: f64,
    pub eer: f64,
    pub eer_threshold: f64,
    /// (target FAR, threshold, TAR) rows.
    pub tar_at_far: Vec<(f64, f64, f64)>,
}

/// Computes [`Metrics`]. The threshold for a target FAR is the lowest one whose FAR does not exceed the target.
pub fn metrics(genuine: &[f64], impostor: &[f64], fars: &[f64]) -> Metrics {
    let (ng, ni) = (genuine.len().max(1) as f64, impostor.len().max(1) as f64);
    // AUC: probability that a genuine score beats an impostor score (ties count half).
    let mut wins = 0.0;
    for g in genuine {
        for i in impostor {
            wins += if g > i {
                1.0
            } else if g == i {
                0.5
            } else {
                0.0
            };
        }
    }
    let auc = wins / (ng * ni);
    let mut thresholds: Vec<f64> = genuine.iter().chain(impostor).copied().collect();
    thresholds.sort_by(f64::total_cmp);
    thresholds.dedup();
    let rates = |t: f64| {
        let far = impostor.iter().filter(|s| **s >= t).count() as f64 / ni;
        let frr = genuine.iter().filter(|s| **s < t).count() as f64 / ng;
        (far, frr)
    };
    let (mut eer, mut eer_threshold, mut best_gap) = (1.0, 0.0, f64::MAX);
    for &t in &thresholds {
        let (far, frr) = rates(t);
        if (far - frr).abs() < best_gap {
            best_gap = (far - frr).abs();
            eer = (far + frr) / 2.0;
            eer_threshold = t;
        }
    }
    let tar_at_far = fars
        .iter()
        .map(|&target| {
            let t = thresholds
                .iter()
                .copied()
                .find(|&t| rates(t).0 <= target)
                .unwrap_or(f64::INFINITY);
            (target, t, 1.0 - rates(t).1)
        })
        .collect();
    Metrics {
        genuine: genuine.len(),
        impostor: impostor.len(),
        auc,
        eer,
        eer_threshold,
        tar_at_far,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separable_and_overlapping_sets() {
        let m = metrics(&[0.9, 0.8, 0.7], &[0.1, 0.2, 0.3, 0.4], &[0.01]);
        assert_eq!(m.auc, 1.0);
        assert_eq!(m.eer, 0.0);
        assert_eq!(m.tar_at_far[0].2, 1.0);
        let m = metrics(&[0.5, 0.9], &[0.6, 0.1], &[0.5]);
        assert_eq!(m.auc, 0.75);
        assert_eq!(m.eer, 0.5);
        // At FAR ≤ 0.5 the lowest threshold is 0.5 (impostor 0.6 accepted): both genuine accepted.
        assert_eq!(m.tar_at_far[0], (0.5, 0.5, 1.0));
    }
}
