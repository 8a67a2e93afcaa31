//! The challenge the hosted page performs: actions in random order (always an open mouth, which a photo cannot
//! fake, plus one or two of blink and head turns) and a random sequence of colour flashes. Pure: the randomness is
//! passed in.
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::face::liveness::Action;

/// One colour shown full-screen during the opening phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    pub rgb: [u8; 3],
    /// Start, in milliseconds from the start of capture.
    pub start_ms: u32,
    pub ms: u32,
}

/// A challenge as issued to the page and kept for the decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    pub actions: Vec<String>,
    pub flash: Vec<Flash>,
    pub baseline_ms: u32,
    pub action_ms: u32,
    pub fps: u32,
}

/// Timing of a challenge.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub baseline_ms: u32,
    pub action_ms: u32,
    pub fps: u32,
}

/// Saturated colours far apart in chromaticity, so that their reflection on skin can be told apart.
const PALETTE: [[u8; 3]; 5] = [
    [255, 0, 0],
    [0, 255, 0],
    [0, 0, 255],
    [255, 0, 255],
    [0, 255, 255],
];

/// Each flash lasts this long (the opening phase holds as many as fit, at least 4).
const FLASH_MS: u32 = 300;

pub fn action_from_str(s: &str) -> Option<Action> {
    Some(match s {
        "open_mouth" => Action::OpenMouth,
        "blink" => Action::Blink,
        "turn_left" => Action::TurnLeft,
        "turn_right" => Action::TurnRight,
        _ => return None,
    })
}

impl Challenge {
    /// A random challenge: an open mouth plus one or two of blink / turn left / turn right, shuffled; a random
    /// flash sequence with no colour repeated back to back.
    pub fn random(rng: &mut impl Rng, timing: Timing) -> Challenge {
        let extra = rng.gen_range(1..=2);
        Challenge::random_with(rng, timing, extra)
    }

    /// A random challenge of a strict scene: an open mouth plus two of blink / turn left / turn right, shuffled.
    pub fn random_strict(rng: &mut impl Rng, timing: Timing) -> Challenge {
        Challenge::random_with(rng, timing, 2)
    }

    fn random_with(rng: &mut impl Rng, timing: Timing, extra: usize) -> Challenge {
        let mut others = vec![Action::Blink, Action::TurnLeft, Action::TurnRight];
        others.shuffle(rng);
        let mut actions = vec![Action::OpenMouth];
        actions.extend(others.into_iter().take(extra));
        actions.shuffle(rng);
        Challenge::with_actions(rng, &actions, timing)
    }

    /// A challenge with the given actions (tests fix them to what a recorded video performs).
    pub fn with_actions(rng: &mut impl Rng, actions: &[Action], timing: Timing) -> Challenge {
        let n = (timing.baseline_ms / FLASH_MS).max(4);
        let mut flash = Vec::with_capacity(n as usize);
        let mut last: Option<usize> = None;
        for i in 0..n {
            let mut c = rng.gen_range(0..PALETTE.len());
            if Some(c) == last {
                c = (c + 1 + rng.gen_range(0..PALETTE.len() - 1)) % PALETTE.len();
            }
            last = Some(c);
            flash.push(Flash {
                rgb: PALETTE[c],
                start_ms: i * FLASH_MS,
                ms: FLASH_MS,
            });
        }
        let baseline_ms = timing.baseline_ms.max(n * FLASH_MS);
        Challenge {
            actions: actions.iter().map(|a| a.as_str().to_string()).collect(),
            flash,
            baseline_ms,
            action_ms: timing.action_ms,
            fps: timing.fps,
        }
    }

    /// The actions, parsed.
    pub fn parsed_actions(&self) -> Vec<Action> {
        self.actions
            .iter()
            .filter_map(|a| action_from_str(a))
            .collect()
    }

    /// Total capture time in milliseconds.
    pub fn duration_ms(&self) -> u32 {
        self.baseline_ms + self.action_ms * self.actions.len() as u32
    }

    /// The colour on screen at `t_ms` (black when no flash is shown: the page shows a dark background then).
    pub fn flash_at(&self, t_ms: u32) -> Option<[f32; 3]> {
        self.flash
            .iter()
            .find(|f| t_ms >= f.start_ms && t_ms < f.start_ms + f.ms)
            .map(|f| [f.rgb[0] as f32, f.rgb[1] as f32, f.rgb[2] as f32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const T: Timing = Timing {
        baseline_ms: 1500,
        action_ms: 2500,
        fps: 10,
    };

    #[test]
    fn random_challenges_always_open_the_mouth_and_vary() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut orders = std::collections::HashSet::new();
        for _ in 0..500 {
            let c = Challenge::random(&mut rng, T);
            let a = c.parsed_actions();
            assert!((2..=3).contains(&a.len()), "{a:?}");
            assert_eq!(a.iter().filter(|x| **x == Action::OpenMouth).count(), 1);
            let mut uniq = a.clone();
            uniq.dedup();
            assert_eq!(uniq.len(), a.len());
            assert!(c.flash.len() >= 4);
            assert!(c.flash.windows(2).all(|w| w[0].rgb != w[1].rgb));
            assert!(c.flash.iter().all(|f| f.start_ms + f.ms <= c.baseline_ms));
            orders.insert(c.actions.join(","));
        }
        // 3 two-action sets × 2 orders + 3 three-action sets × 6 orders = 24 sequences.
        assert!(orders.len() >= 20, "{}", orders.len());
    }

    #[test]
    fn strict_challenges_ask_three_actions() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        let mut orders = std::collections::HashSet::new();
        for _ in 0..300 {
            let a = Challenge::random_strict(&mut rng, T).parsed_actions();
            assert_eq!(a.len(), 3, "{a:?}");
            assert_eq!(a.iter().filter(|x| **x == Action::OpenMouth).count(), 1);
            orders.insert(format!("{a:?}"));
        }
        // 3 sets of two extra actions × 6 orders.
        assert_eq!(orders.len(), 18);
    }

    #[test]
    fn flash_lookup_and_duration() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let c = Challenge::with_actions(&mut rng, &[Action::TurnLeft, Action::OpenMouth], T);
        assert_eq!(c.actions, ["turn_left", "open_mouth"]);
        assert_eq!(c.duration_ms(), 1500 + 5000);
        let f = c.flash[1];
        assert_eq!(
            c.flash_at(f.start_ms + 1),
            Some([f.rgb[0] as f32, f.rgb[1] as f32, f.rgb[2] as f32])
        );
        assert_eq!(c.flash_at(c.baseline_ms + 10), None);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Challenge>(&json).unwrap(), c);
    }
}
