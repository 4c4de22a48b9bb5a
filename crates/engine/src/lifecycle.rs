//! The container lifecycle as an enum, with every transition checked: an impossible request
//! gets Docker's error wording, never a silent state change.

use serde::{Deserialize, Serialize};

/// A container's state, as `docker ps` and the API name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
}

/// What happens to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `start` (or a restart policy bringing it back).
    Start,
    Pause,
    Unpause,
    /// The process exited (or was killed).
    Exit,
    /// The restart policy is waiting to start it again.
    WaitRestart,
    /// `rm`; `force` allows removing a running or paused container (it is killed first).
    Remove {
        force: bool,
    },
    /// Removal failed half-way.
    RemovalFailed,
    /// Removal was given up before anything was removed (the process would not die): the
    /// container is back in the state its process is in.
    RemovalAborted,
    /// The process could not be started at all.
    StartFailed,
}

/// A refused transition, with Docker's wording.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct StateError(pub String);

impl State {
    /// The state after `event`, or why it cannot happen to container `name`.
    pub fn on(self, event: Event, name: &str) -> Result<State, StateError> {
        use Event::*;
        use State::*;
        let err = |m: String| Err(StateError(m));
        match (self, event) {
            (Created | Exited | Restarting, Start) => Ok(Running),
            (Running, Start) => err(format!("container {name} is already running")),
            (Paused, Start) => err(format!("cannot start a paused container {name}, try unpause instead")),
            (Running, Pause) => Ok(Paused),
            (Paused, Pause) => err(format!("Container {name} is already paused")),
            (_, Pause) => err(format!("Container {name} is not running")),
            (Paused, Unpause) => Ok(Running),
            (_, Unpause) => err(format!("Container {name} is not paused")),
            (Running | Paused | Restarting, Exit) => Ok(Exited),
            (Exited, WaitRestart) => Ok(Restarting),
            (Running | Paused, Remove { force: false }) => err(format!(
                "cannot remove container \"/{name}\": container is {}: Stop the container before attempting removal or force remove",
                self.api_name()
            )),
            (Removing, Remove { .. }) => err(format!("removal of container {name} is already in progress")),
            (_, Remove { .. }) => Ok(Removing),
            (Removing, RemovalFailed) => Ok(Dead),
            (Removing, RemovalAborted) => Ok(Exited),
            (Created | Exited | Restarting, StartFailed) => Ok(Exited),
            (Dead | Removing, Start) => {
                err("container is marked for removal and cannot be started".into())
            }
            (s, e) => err(format!("container {name}: cannot {e:?} while {}", s.api_name())),
        }
    }

    /// The events that take a container from `self` to `next` (empty when it stays), as a
    /// process state reported by its shim or a removal implies them; `None` for a move the
    /// lifecycle has no path for.
    pub fn events_to(self, next: State) -> Option<&'static [Event]> {
        use Event::*;
        use State::*;
        Some(match (self, next) {
            (a, b) if a == b => &[],
            (Created | Exited | Restarting, Running) => &[Start],
            (Running, Paused) => &[Pause],
            (Paused, Running) => &[Unpause],
            (Running | Paused | Restarting, Exited) => &[Exit],
            (Created, Exited) => &[StartFailed],
            (Exited, Restarting) => &[WaitRestart],
            (Running | Paused, Restarting) => &[Exit, WaitRestart],
            (_, Removing) => &[Remove { force: true }],
            (Removing, Dead) => &[RemovalFailed],
            (Removing, _) => &[RemovalAborted],
            _ => return None,
        })
    }

    /// Whether the lifecycle allows moving from `self` to `next` (see [`State::events_to`]).
    pub fn can_move_to(self, next: State, name: &str) -> Result<(), StateError> {
        let Some(events) = self.events_to(next) else {
            return Err(StateError(format!(
                "container {name}: no transition from {} to {}",
                self.api_name(),
                next.api_name()
            )));
        };
        let mut s = self;
        for e in events {
            s = s.on(*e, name)?;
        }
        Ok(())
    }

    /// The lowercase name the API uses in `State.Status`.
    pub fn api_name(self) -> &'static str {
        match self {
            State::Created => "created",
            State::Running => "running",
            State::Paused => "paused",
            State::Restarting => "restarting",
            State::Exited => "exited",
            State::Dead => "dead",
            State::Removing => "removing",
        }
    }
}

/// A container's state with the data that belongs to it, for the API's `State` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    Created,
    Running {
        pid: i32,
    },
    Paused {
        pid: i32,
    },
    /// Waiting for the restart policy to start it again after `exit_code`.
    Restarting {
        exit_code: i32,
    },
    /// Its process ended with `exit_code`; `error` says why it could not run, if it could not.
    Exited {
        exit_code: i32,
        error: String,
    },
    Removing,
    Dead,
}

impl Phase {
    /// The state without its data.
    pub fn state(&self) -> State {
        match self {
            Phase::Created => State::Created,
            Phase::Running { .. } => State::Running,
            Phase::Paused { .. } => State::Paused,
            Phase::Restarting { .. } => State::Restarting,
            Phase::Exited { .. } => State::Exited,
            Phase::Removing => State::Removing,
            Phase::Dead => State::Dead,
        }
    }

    /// The process's pid (0 when none runs).
    pub fn pid(&self) -> i32 {
        match self {
            Phase::Running { pid } | Phase::Paused { pid } => *pid,
            _ => 0,
        }
    }
}

/// What the API shows of a container's state: its phase and its history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub phase: Phase,
    /// The last process's exit code (0 before the first exit).
    pub exit_code: i32,
    /// Why it could not be (re)started, or empty.
    pub error: String,
    /// RFC 3339; empty before the first start / exit.
    pub started_at: String,
    pub finished_at: String,
    pub restart_count: u32,
    pub oom_killed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use Event::*;
    use State::*;

    #[test]
    fn the_usual_life() {
        let mut s = Created;
        for (e, want) in [
            (Start, Running),
            (Pause, Paused),
            (Unpause, Running),
            (Exit, Exited),
            (Start, Running),
            (Exit, Exited),
            (Remove { force: false }, Removing),
        ] {
            s = s.on(e, "web").unwrap();
            assert_eq!(s, want);
        }
    }

    #[test]
    fn refused_transitions_use_dockers_words() {
        assert_eq!(
            Running.on(Start, "web").unwrap_err().0,
            "container web is already running"
        );
        assert_eq!(
            Paused.on(Start, "web").unwrap_err().0,
            "cannot start a paused container web, try unpause instead"
        );
        assert_eq!(
            Exited.on(Pause, "web").unwrap_err().0,
            "Container web is not running"
        );
        assert_eq!(
            Paused.on(Pause, "web").unwrap_err().0,
            "Container web is already paused"
        );
        assert_eq!(
            Running.on(Unpause, "web").unwrap_err().0,
            "Container web is not paused"
        );
        assert!(Running
            .on(Remove { force: false }, "web")
            .unwrap_err()
            .0
            .contains("Stop the container before attempting removal or force remove"));
        assert_eq!(Running.on(Remove { force: true }, "web").unwrap(), Removing);
        assert!(Removing.on(Remove { force: true }, "web").is_err());
        assert_eq!(Removing.on(RemovalFailed, "web").unwrap(), Dead);
        assert!(Dead.on(Start, "web").is_err());
        assert_eq!(Exited.on(WaitRestart, "web").unwrap(), Restarting);
        assert_eq!(Restarting.on(Start, "web").unwrap(), Running);
        assert!(Created.on(Exit, "web").is_err());
    }

    #[test]
    fn every_reported_move_is_a_known_transition() {
        let all = [Created, Running, Paused, Restarting, Exited, Dead, Removing];
        for from in all {
            for to in all {
                let allowed = from.can_move_to(to, "web").is_ok();
                // The moves a shim's report or the engine's removal can make.
                let expected = from == to
                    || matches!(
                        (from, to),
                        (Created | Exited | Restarting, Running)
                            | (Running, Paused)
                            | (Paused, Running)
                            | (Running | Paused | Restarting, Exited)
                            | (Created, Exited)
                            | (Exited | Running | Paused, Restarting)
                            | (
                                Created | Running | Paused | Restarting | Exited | Dead,
                                Removing
                            )
                            | (Removing, _)
                    );
                assert_eq!(allowed, expected, "{from:?} -> {to:?}");
            }
        }
        assert!(Running.can_move_to(Created, "web").is_err());
        assert!(Exited.can_move_to(Paused, "web").is_err());
    }

    #[test]
    fn api_names_round_trip() {
        for s in [Created, Running, Paused, Restarting, Exited, Dead, Removing] {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.api_name()));
            assert_eq!(serde_json::from_str::<State>(&j).unwrap(), s);
        }
    }
}
