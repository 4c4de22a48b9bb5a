//! Engine events: a broadcast to live listeners and a bounded history for `since` queries.
//! Events are the engine's own type; berthd renders them in Docker's JSON and applies the
//! API's filters (`daemon/src/events.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use tokio::sync::broadcast;

/// Events kept for `since` queries.
const HISTORY: usize = 1024;

/// What kind of object an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectType {
    Container,
    Image,
    Network,
    Volume,
}

impl ObjectType {
    /// The API's name of the type.
    pub fn as_str(&self) -> &'static str {
        match self {
            ObjectType::Container => "container",
            ObjectType::Image => "image",
            ObjectType::Network => "network",
            ObjectType::Volume => "volume",
        }
    }
}

/// Something that happened to an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub object: ObjectType,
    /// `create`, `start`, `die`, `exec_create`, ... as Docker names actions.
    pub action: String,
    /// The object's id (a volume's name).
    pub actor: String,
    /// Name, image, labels, exit code and the like.
    pub attributes: BTreeMap<String, String>,
    /// Nanoseconds since the epoch.
    pub time_nanos: u64,
}

/// The event bus.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Event>,
    history: Mutex<VecDeque<Event>>,
}

impl Default for Events {
    fn default() -> Self {
        Events {
            tx: broadcast::channel(1024).0,
            history: Mutex::new(VecDeque::new()),
        }
    }
}

impl Events {
    /// Publishes an event about object `id`.
    pub fn publish(
        &self,
        object: ObjectType,
        action: &str,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let time_nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        let ev = Event {
            object,
            action: action.to_string(),
            actor: id.to_string(),
            attributes,
            time_nanos,
        };
        {
            let mut h = self.history.lock().expect("events lock");
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(ev.clone());
        }
        let _ = self.tx.send(ev);
    }

    /// A receiver of live events, and the history as of now.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let h = self.history.lock().expect("events lock");
        (h.iter().cloned().collect(), self.tx.subscribe())
    }

    /// How many listeners there are.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_bounded_and_live_listeners_get_events() {
        let ev = Events::default();
        let (old, mut rx) = ev.subscribe();
        assert!(old.is_empty());
        ev.publish(ObjectType::Volume, "create", "v", BTreeMap::new());
        let first = rx.try_recv().unwrap();
        assert_eq!(
            (first.object, first.action.as_str(), first.actor.as_str()),
            (ObjectType::Volume, "create", "v")
        );
        assert!(first.time_nanos > 0);
        for i in 0..HISTORY + 5 {
            ev.publish(
                ObjectType::Volume,
                "create",
                &format!("v{i}"),
                BTreeMap::new(),
            );
        }
        let (old, _) = ev.subscribe();
        assert_eq!(old.len(), HISTORY);
        assert_eq!(old[0].actor, "v5");
    }
}
