//! A container's output and input: attach (now or at the next start) and its logs.

use super::*;

impl Containers {
    /// `POST /containers/{id}/attach`: a stream from the shim (Docker frames out, raw bytes
    /// in). Waits for `start` when the container is only created.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub async fn attach(
        &self,
        name: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<(bool, UnixStream), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        let tty = rec.config.tty.unwrap_or(false);
        let req = Request::Attach {
            stdin,
            stdout,
            stderr,
        };
        match e.view().state() {
            State::Running | State::Paused | State::Restarting => {
                Ok((tty, shim_stream(&self.socket(&rec.id), &req).await?))
            }
            State::Created | State::Exited => {
                let (tx, rx) = oneshot::channel();
                e.attach_waiters
                    .lock()
                    .expect("waiters")
                    .push(AttachWaiter { req, tx });
                let s = rx
                    .await
                    .map_err(|_| conflict("the container was removed"))??;
                Ok((tty, s))
            }
            _ => Err(conflict(
                "You cannot attach to a stopped container, start it first",
            )),
        }
    }

    /// An attach of stdout and stderr to a created container, handed over by its start
    /// (the builder's RUN steps): registered now, so no output is missed.
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub fn attach_at_start(
        &self,
        name: &str,
    ) -> Result<oneshot::Receiver<Result<UnixStream, EngineError>>, EngineError> {
        let e = self.find(name)?;
        if e.view().state() != State::Created {
            return Err(conflict("the container is not newly created"));
        }
        let (tx, rx) = oneshot::channel();
        e.attach_waiters
            .lock()
            .expect("waiters")
            .push(AttachWaiter {
                req: Request::Attach {
                    stdin: false,
                    stdout: true,
                    stderr: true,
                },
                tx,
            });
        Ok(rx)
    }

    /// `GET /containers/{id}/logs`: entries on a channel (the sender ends when the log does,
    /// or, with `follow`, when the container stops).
    #[tracing::instrument(level = "debug", skip_all, fields(container = %name))]
    pub fn logs(
        &self,
        name: &str,
        o: LogOptions,
    ) -> Result<(bool, tokio::sync::mpsc::Receiver<LogLine>), EngineError> {
        let e = self.find(name)?;
        let rec = e.record();
        if crate::logconfig::driver(&rec.host_config) == "none" {
            return Err(crate::error::not_implemented(
                "configured logging driver does not support reading",
            ));
        }
        let path = self.dir(&rec.id).join(format!("{}-json.log", rec.id));
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let view = e.watch();
        let stopped = move || {
            let v = view.borrow();
            v.removed || !v.active()
        };
        std::thread::spawn(move || crate::logs::read(&path, o, stopped, tx));
        Ok((rec.config.tty.unwrap_or(false), rx))
    }
}
