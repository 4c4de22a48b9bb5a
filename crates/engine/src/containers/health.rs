//! Health checks: one task per started container with a health check runs its probe as an
//! exec in the container, one probe at a time (a probe that outlives its timeout is killed,
//! so probes never pile up), and keeps the container's [`Health`], announcing each change of
//! status as a `health_status: <status>` event, as dockerd does.

use super::*;
use crate::model::health::{Health, HealthCheck, ProbeResult, OUTPUT_LIMIT};

impl Entry {
    /// The container's health, if it has a health check and has been started with it.
    pub fn health(&self) -> Option<Health> {
        self.health.lock().expect("health lock").clone()
    }

    /// A stop begins: no probe result counts any more (until the next start).
    pub(super) fn stop_health_checks(&self) {
        self.probing
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// A run begins: as dockerd, `starting` again with no failures, the log kept.
    fn health_run_starts(&self) {
        self.probing
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.health
            .lock()
            .expect("health lock")
            .get_or_insert_with(Health::default)
            .restart();
    }
}

impl berth_durable::Record for Health {
    const KIND: &'static str = "container health";
    const SCHEMA: u32 = 1;
}

impl Containers {
    fn health_file(&self, id: &str) -> PathBuf {
        self.dir(id).join("health.json")
    }

    /// Writes what the probes have shown, for the next berthd. Without fsyncs: a probe's
    /// result is no user's data, and after a power loss the next run starts over anyway (it
    /// would cost two fsyncs on every probe and on the start path).
    fn save_health(&self, e: &Entry) {
        if let Some(h) = e.health() {
            let rec = e.record();
            if let Err(err) = berth_durable::replace_record(&self.health_file(&rec.id), &h) {
                tracing::warn!(container = %rec.id, error = %err, "save the health state");
            }
        }
    }

    /// After a berthd restart: the health the container had (a stopped one's is what the
    /// stop made it).
    pub(super) fn load_health(&self, e: &Entry) {
        let rec = e.record();
        if let Ok(mut h) = berth_durable::load::<Health>(&self.health_file(&rec.id)) {
            if !matches!(e.view().state(), State::Running | State::Paused) {
                h.stopped();
            }
            *e.health.lock().expect("health lock") = Some(h);
        }
    }

    /// Starts the health task of a container that was just started (or found running when
    /// berthd started): it lives until the container is started again by berthd (a newer
    /// generation) or removed, and follows restarts by the restart policy.
    /// `resumed`: the container was found running by a new berthd; its health goes on from
    /// what was kept instead of starting over.
    pub(super) fn watch_health(self: &Arc<Self>, e: Arc<Entry>, resumed: bool) {
        let rec = e.record();
        let Some(hc) = rec
            .config
            .healthcheck
            .as_ref()
            .and_then(HealthCheck::from_config)
        else {
            *e.health.lock().expect("health lock") = None;
            return;
        };
        let resumed = resumed && e.health().is_some();
        if !resumed {
            // Starting at once, so that an inspect right after the start sees it (the task
            // writes it down when its run begins).
            e.health_run_starts();
        }
        let gen = e.generation.load(std::sync::atomic::Ordering::SeqCst);
        let me = self.clone();
        tokio::spawn(async move { me.health_loop(e, gen, hc, resumed).await });
    }

    async fn health_loop(
        self: Arc<Self>,
        e: Arc<Entry>,
        gen: u64,
        hc: HealthCheck,
        mut resumed: bool,
    ) {
        let current = |e: &Entry| e.generation.load(std::sync::atomic::Ordering::SeqCst) == gen;
        let mut watch = e.watch();
        'runs: loop {
            // A run of the container: from its start (by berthd or its restart policy).
            if watch
                .wait_for(|v| v.state() == State::Running || v.removed)
                .await
                .is_err()
                || e.view().removed
                || !current(&e)
            {
                return;
            }
            // A resumed run goes on past its start period with the health it had.
            let started = if std::mem::take(&mut resumed) {
                e.probing.store(true, std::sync::atomic::Ordering::SeqCst);
                tokio::time::Instant::now()
                    .checked_sub(hc.start_period)
                    .unwrap_or_else(tokio::time::Instant::now)
            } else {
                e.health_run_starts();
                self.save_health(&e);
                tokio::time::Instant::now()
            };
            loop {
                let in_start = started.elapsed() < hc.start_period;
                let wait = if in_start {
                    hc.start_interval.min(hc.start_period)
                } else {
                    hc.interval
                };
                // Sleep, or wake when the container stops or pauses.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = watch.wait_for(|v| v.state() != State::Running || v.removed) => {}
                }
                if !current(&e) || e.view().removed {
                    return;
                }
                match e.view().state() {
                    State::Running => {}
                    // No probes while paused; the run goes on when it is unpaused.
                    State::Paused => {
                        let _ = watch
                            .wait_for(|v| v.state() != State::Paused || v.removed)
                            .await;
                        continue;
                    }
                    // Stopped, or restarting by its policy: wait for the next run.
                    _ => continue 'runs,
                }
                let probing = || e.probing.load(std::sync::atomic::Ordering::SeqCst);
                if !probing() {
                    // A stop is under way: no more probes in this run.
                    let _ = watch
                        .wait_for(|v| v.state() != State::Running || v.removed)
                        .await;
                    continue 'runs;
                }
                let in_start = started.elapsed() < hc.start_period;
                let r = self.probe(&e, &hc).await;
                let changed = {
                    let mut h = e.health.lock().expect("health lock");
                    // A probe that ends after its container stopped, or once a stop began,
                    // is not recorded (the stop makes it unhealthy; see Entry::transition).
                    if e.view().state() != State::Running || !probing() {
                        continue;
                    }
                    h.get_or_insert_with(Health::default)
                        .record(r, in_start, hc.retries)
                };
                self.save_health(&e);
                if let Some(status) = changed {
                    let rec = e.record();
                    self.publish(&format!("health_status: {}", status.api_name()), &rec, &[]);
                }
            }
        }
    }

    /// Runs the probe once, as an exec in the container, within its timeout.
    async fn probe(self: &Arc<Self>, e: &Arc<Entry>, hc: &HealthCheck) -> ProbeResult {
        let start = SystemTime::now();
        let failed = |output: String| ProbeResult {
            start,
            end: SystemTime::now(),
            exit_code: -1,
            output,
        };
        let rec = e.record();
        let spec = ExecSpec {
            cmd: hc.cmd.clone(),
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let id = match self.exec_create(rec.id.as_str(), spec) {
            Ok(id) => id,
            Err(err) => return failed(err.message),
        };
        let key = self.exec_get(id.as_str()).map(|x| x.key).unwrap_or(0);
        let stream = match self.exec_start(id.as_str(), false).await {
            Ok(Some((_, s))) => s,
            Ok(None) => {
                self.forget_exec(&id);
                return failed("the probe did not start".into());
            }
            Err(err) => {
                self.forget_exec(&id);
                return failed(err.message);
            }
        };
        let mut output = Vec::new();
        let res = tokio::time::timeout(
            hc.timeout,
            super::shim::read_exec(stream, Some(&mut output), OUTPUT_LIMIT),
        )
        .await;
        let r = match res {
            Ok(code) => {
                output.truncate(OUTPUT_LIMIT);
                ProbeResult {
                    start,
                    end: SystemTime::now(),
                    exit_code: code,
                    output: String::from_utf8_lossy(&output).into_owned(),
                }
            }
            Err(_) => {
                // Killed, so that the next probe never runs beside this one.
                let _ =
                    shim_call(&self.socket(&rec.id), &Request::ExecKill { key, signal: 9 }).await;
                failed(format!(
                    "Health check exceeded timeout ({})",
                    go_duration(hc.timeout)
                ))
            }
        };
        self.forget_exec(&id);
        r
    }

    /// Drops a probe's exec record (dockerd keeps none for probes either).
    fn forget_exec(&self, id: &ExecId) {
        self.execs.lock().expect("execs").remove(id);
    }
}

/// A duration as Go prints it (`30s`, `500ms`, `1m30s`), for dockerd's timeout message.
fn go_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let s = d.as_secs_f64();
    if s < 60.0 {
        return format!("{}s", trim(s));
    }
    let m = (s / 60.0).floor();
    format!("{}m{}s", m as u64, trim(s - m * 60.0))
}

fn trim(x: f64) -> String {
    let t = format!("{x:.3}");
    t.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(Duration::from_secs(30)), "30s");
        assert_eq!(go_duration(Duration::from_millis(300)), "300ms");
        assert_eq!(go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(go_duration(Duration::from_secs(90)), "1m30s");
    }
}
