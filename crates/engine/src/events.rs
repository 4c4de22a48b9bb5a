//! Engine events in Docker's shape (`docker events`): a broadcast to live listeners and a
//! bounded history for `--since`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use serde_json::{json, Value};
use tokio::sync::broadcast;

/// Events kept for `since` queries.
const HISTORY: usize = 1024;

/// The event bus.
#[derive(Debug)]
pub struct Events {
    tx: broadcast::Sender<Value>,
    history: Mutex<VecDeque<Value>>,
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
    /// Publishes an event about object `id` of `typ` ("container", "image", ...).
    pub fn publish(&self, typ: &str, action: &str, id: &str, attrs: BTreeMap<String, String>) {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        let mut ev = json!({
            "Type": typ,
            "Action": action,
            "Actor": {"ID": id, "Attributes": attrs},
            "scope": "local",
            "time": now.as_secs(),
            "timeNano": now.as_nanos() as u64,
        });
        if typ == "container" {
            // The fields of the pre-1.22 format, which the docker CLI still reads.
            ev["status"] = json!(action);
            ev["id"] = json!(id);
            if let Some(img) = attrs_image(&ev) {
                ev["from"] = json!(img);
            }
        }
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
    pub fn subscribe(&self) -> (Vec<Value>, broadcast::Receiver<Value>) {
        let h = self.history.lock().expect("events lock");
        (h.iter().cloned().collect(), self.tx.subscribe())
    }

    /// How many listeners there are.
    pub fn listeners(&self) -> usize {
        self.tx.receiver_count()
    }
}

fn attrs_image(ev: &Value) -> Option<String> {
    ev["Actor"]["Attributes"]["image"]
        .as_str()
        .map(str::to_string)
}

/// Docker's event filters: `type`, `event`, `container`, `image`, `label`.
pub fn matches(ev: &Value, filters: &BTreeMap<String, Vec<String>>) -> bool {
    filters.iter().all(|(k, vals)| {
        let any = |f: &dyn Fn(&str) -> bool| vals.iter().any(|v| f(v));
        let attrs = &ev["Actor"]["Attributes"];
        match k.as_str() {
            "type" => any(&|v| ev["Type"] == v),
            "event" | "status" => any(&|v| ev["Action"] == v),
            "container" => any(&|v| {
                ev["Type"] == "container"
                    && (ev["Actor"]["ID"]
                        .as_str()
                        .is_some_and(|id| id.starts_with(v))
                        || attrs["name"] == v)
            }),
            "image" => any(&|v| attrs["image"] == v || ev["Actor"]["ID"] == v),
            "label" => any(&|v| match v.split_once('=') {
                Some((lk, lv)) => attrs[lk] == lv,
                None => !attrs[v].is_null(),
            }),
            _ => true,
        }
    })
}
