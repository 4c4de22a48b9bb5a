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
            (Dead, Start) => err(format!("container {name} is marked for removal and cannot be started")),
            (s, e) => err(format!("container {name}: cannot {e:?} while {}", s.api_name())),
        }
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
    fn api_names_round_trip() {
        for s in [Created, Running, Paused, Restarting, Exited, Dead, Removing] {
            let j = serde_json::to_string(&s).unwrap();
            assert_eq!(j, format!("\"{}\"", s.api_name()));
            assert_eq!(serde_json::from_str::<State>(&j).unwrap(), s);
        }
    }
}
