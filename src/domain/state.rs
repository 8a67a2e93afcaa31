//! The life of a verification, as a pure state machine: time is passed in, nothing is stored here.

/// Where a verification stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Created by initialize; the user has not opened the hosted page yet.
    Initialized,
    /// The user opened the hosted page at least once.
    InProgress,
    Passed,
    Failed,
    /// Not decided before its expiry.
    Expired,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialized => "initialized",
            State::InProgress => "in_progress",
            State::Passed => "passed",
            State::Failed => "failed",
            State::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "initialized" => State::Initialized,
            "in_progress" => State::InProgress,
            "passed" => State::Passed,
            "failed" => State::Failed,
            "expired" => State::Expired,
            _ => return None,
        })
    }

    /// Whether no further change can happen.
    pub fn is_final(self) -> bool {
        matches!(self, State::Passed | State::Failed | State::Expired)
    }

    /// The state as seen at `now`: an undecided verification past `expires_at` is expired.
    pub fn at(self, now: i64, expires_at: i64) -> State {
        if !self.is_final() && now >= expires_at {
            State::Expired
        } else {
            self
        }
    }
}

/// What may happen to a verification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The merchant's certify URL was opened (may happen again while undecided: the user reopens the link).
    OpenPage,
    /// The decision was made.
    Decide { passed: bool },
}

/// Why an event is not allowed now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransitionError {
    Expired,
    AlreadyDecided,
    /// A decision needs the hosted page to have been opened first.
    NotStarted,
}

/// A move that [`apply`] allowed: the stored state it starts from and the state it leads to, for a store to write as
/// a compare-and-set on `from` (so that of two racing moves only one lands).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: State,
    pub to: State,
}

impl Transition {
    /// The move `event` makes at `now` from the stored `state`, or why it cannot happen.
    pub fn of(
        state: State,
        expires_at: i64,
        now: i64,
        event: Event,
    ) -> Result<Transition, TransitionError> {
        Ok(Transition {
            from: state,
            to: apply(state, expires_at, now, event)?,
        })
    }
}

/// The state after `event` at `now`, or why it cannot happen.
pub fn apply(
    state: State,
    expires_at: i64,
    now: i64,
    event: Event,
) -> Result<State, TransitionError> {
    match (state.at(now, expires_at), event) {
        (State::Expired, _) => Err(TransitionError::Expired),
        (State::Passed | State::Failed, _) => Err(TransitionError::AlreadyDecided),
        (State::Initialized | State::InProgress, Event::OpenPage) => Ok(State::InProgress),
        (State::InProgress, Event::Decide { passed }) => {
            Ok(if passed { State::Passed } else { State::Failed })
        }
        (State::Initialized, Event::Decide { .. }) => Err(TransitionError::NotStarted),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [State; 5] = [
        State::Initialized,
        State::InProgress,
        State::Passed,
        State::Failed,
        State::Expired,
    ];

    #[test]
    fn names_round_trip() {
        for s in ALL {
            assert_eq!(State::parse(s.as_str()), Some(s));
        }
        assert_eq!(State::parse("x"), None);
    }

    #[test]
    fn expiry_applies_only_to_undecided() {
        for s in ALL {
            let later = s.at(100, 50);
            assert_eq!(later, if s.is_final() { s } else { State::Expired });
            assert_eq!(s.at(49, 50), s);
        }
    }

    #[test]
    fn a_transition_starts_from_the_stored_state() {
        let decide = Event::Decide { passed: false };
        assert_eq!(
            Transition::of(State::InProgress, 50, 10, decide),
            Ok(Transition {
                from: State::InProgress,
                to: State::Failed
            })
        );
        assert_eq!(
            Transition::of(State::InProgress, 50, 60, decide),
            Err(TransitionError::Expired)
        );
        assert_eq!(
            Transition::of(State::Passed, 50, 10, decide),
            Err(TransitionError::AlreadyDecided)
        );
    }

    #[test]
    fn exhaustive_transitions() {
        let events = [
            Event::OpenPage,
            Event::Decide { passed: true },
            Event::Decide { passed: false },
        ];
        for s in ALL {
            for e in events {
                let live = apply(s, 50, 10, e);
                let late = apply(s, 50, 60, e);
                match (s, e) {
                    (State::Initialized | State::InProgress, Event::OpenPage) => {
                        assert_eq!(live, Ok(State::InProgress))
                    }
                    (State::InProgress, Event::Decide { passed: true }) => {
                        assert_eq!(live, Ok(State::Passed))
                    }
                    (State::InProgress, Event::Decide { passed: false }) => {
                        assert_eq!(live, Ok(State::Failed))
                    }
                    (State::Expired, _) => assert_eq!(live, Err(TransitionError::Expired)),
                    (State::Initialized, Event::Decide { .. }) => {
                        assert_eq!(live, Err(TransitionError::NotStarted))
                    }
                    _ => assert_eq!(live, Err(TransitionError::AlreadyDecided)),
                }
                if s.is_final() {
                    assert!(late.is_err());
                } else {
                    assert_eq!(late, Err(TransitionError::Expired));
                }
            }
        }
    }
}
