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

/// For fused embeddings (`[√w·dlib, √(1−w)·MobileFace]`, dlib's 128 values first): the metrics of each part alone
/// and of fused cosines w·cos_dlib + (1−w)·cos_mobileface for several w, printed.
pub fn fused_report(
    pairs: &[Vec<String>],
    embeddings: &std::collections::HashMap<String, Vec<f32>>,
) {
    let w0 = f64::from(crate::face::engine::FUSED_DLIB_WEIGHT);
    let part = |e: &[f32], lo: usize, hi: usize| -> Vec<f64> {
        let v: Vec<f64> = e[lo.min(e.len())..hi.min(e.len())]
            .iter()
            .map(|x| f64::from(*x))
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-12);
        v.into_iter().map(|x| x / n).collect()
    };
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let mut rows = Vec::new();
    for row in pairs {
        if let (Some(a), Some(b)) = (embeddings.get(&row[0]), embeddings.get(&row[1])) {
            let d = dot(&part(a, 0, 128), &part(b, 0, 128));
            let m = dot(&part(a, 128, usize::MAX), &part(b, 128, usize::MAX));
            rows.push((row[2] == "1", d, m));
        }
    }
    let show = |name: &str, f: &dyn Fn(f64, f64) -> f64| {
        let (g, i): (Vec<&(bool, f64, f64)>, Vec<_>) = rows.iter().partition(|r| r.0);
        let g: Vec<f64> = g.iter().map(|r| f(r.1, r.2)).collect();
        let i: Vec<f64> = i.iter().map(|r| f(r.1, r.2)).collect();
        let m = metrics(&g, &i, &[1e-2, 1e-3]);
        println!(
            "  {name:<22} AUC {:.4}  EER {:.3} (cosine {:.3})  TAR {:.3} at FAR <= 1e-2 (cosine {:.3})  TAR {:.3} at FAR <= 1e-3 (cosine {:.3})",
            m.auc, m.eer, m.eer_threshold, m.tar_at_far[0].2, m.tar_at_far[0].1, m.tar_at_far[1].2, m.tar_at_far[1].1
        );
    };
    println!("fused parts (w = dlib's share; the engine uses w = {w0:.2}):");
    show("dlib alone", &|d, _| d);
    show("mobileface alone", &|_, m| m);
    for w in [0.3, 0.4, 0.5, 0.6, 0.7, 0.8] {
        show(&format!("fused w = {w}"), &|d, m| w * d + (1.0 - w) * m);
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
