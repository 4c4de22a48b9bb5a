//! Exec instances: `POST /containers/{id}/exec`, `/exec/{id}/start`, `/exec/{id}/resize` and
//! `/exec/{id}/json`, with the API's `ExecConfig` translated into the engine's `ExecSpec`.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use berth_engine::model::{frames, ExecSpec};
use bollard_stubs::models::ExecConfig;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::containers::ResizeQuery;
use crate::http::{bad, checked, content_type, typed, E};
use crate::streams::{pipe, shim_body};
use crate::ApiError;

/// The engine's exec spec from the API's body.
fn exec_spec(c: ExecConfig) -> ExecSpec {
    ExecSpec {
        cmd: c.cmd.unwrap_or_default(),
        env: c.env.unwrap_or_default(),
        user: c.user.unwrap_or_default(),
        workdir: c.working_dir.unwrap_or_default(),
        tty: c.tty.unwrap_or(false),
        stdin: c.attach_stdin.unwrap_or(false),
        stdout: c.attach_stdout.unwrap_or(false),
        stderr: c.attach_stderr.unwrap_or(false),
        privileged: c.privileged.unwrap_or(false),
        detach_keys: c.detach_keys.unwrap_or_default(),
    }
}

/// `POST /containers/{id}/exec`.
pub async fn exec_create(
    State(engine): E,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body = crate::http::canonical_keys(
        &body,
        &[
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "DetachKeys",
            "Tty",
            "Env",
            "Cmd",
            "Privileged",
            "User",
            "WorkingDir",
        ],
    );
    let c = typed::<ExecConfig>(&body)?;
    if let Some(k) = c.detach_keys.as_deref() {
        if crate::detach::parse(k).is_none() {
            return Err(bad(format!("Invalid escape keys ({k}) provided")));
        }
    }
    let eid = engine.containers.exec_create(&id, exec_spec(c))?;
    Ok((StatusCode::CREATED, Json(json!({"Id": eid.as_str()}))).into_response())
}

/// `POST /exec/{id}/start`: hijacked like attach unless `Detach`.
pub async fn exec_start(
    State(engine): E,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let sock = crate::hijack::socket_of(&req);
    let body = axum::body::to_bytes(req.into_body(), 1 << 20)
        .await
        .map_err(|e| bad(e.to_string()))?;
    let v: Value = if body.is_empty() {
        json!({})
    } else {
        checked::<bollard_stubs::models::ExecStartConfig>(&body)?
    };
    let detach = v["Detach"].as_bool().unwrap_or(false);
    let x = engine.containers.exec_get(&id)?;
    // As dockerd: the process has a terminal if it was created with one; the start's `Tty`
    // says only whether the stream is multiplexed (docker-py starts a tty exec with
    // `Tty: false` and demultiplexes its output).
    let raw = v["Tty"].as_bool().unwrap_or(x.spec.tty);
    // The detach sequence is looked for only with a terminal (binary input is the program's).
    let stdin = x.spec.stdin.then(|| {
        if x.spec.tty {
            crate::detach::parse(&x.spec.detach_keys).unwrap_or(crate::detach::DEFAULT.to_vec())
        } else {
            Vec::new()
        }
    });
    let eng = engine.clone();
    let eid = id.clone();
    let on_exit: Box<dyn FnOnce(i64) + Send> =
        Box::new(move |code| eng.containers.exec_finished(&eid, code));
    if detach || !upgrade {
        let started = engine.containers.exec_start(&id, detach).await?;
        let Some((_, shim)) = started else {
            return Ok(StatusCode::OK.into_response());
        };
        // No hijack asked for: the output as the body (without the exit frame).
        return Ok((
            [(header::CONTENT_TYPE, content_type(raw))],
            shim_body(shim, raw, Some(on_exit)),
        )
            .into_response());
    }
    // Hijacked: the process starts only once the 101 has gone out. A client that reads the
    // response head through a buffer (docker-py's http.client) drops whatever arrives with
    // it, so a quick command's output must not race the head (`exec_run` returned b"").
    engine.containers.exec_can_start(&id)?;
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        crate::hijack::until_read(sock).await;
        let mut client = hyper_util::rt::TokioIo::new(upgraded);
        match engine.containers.exec_start(&id, false).await {
            Ok(Some((_, shim))) => pipe(client, shim, raw, stdin, Some(on_exit)).await,
            Ok(None) => {}
            Err(err) => {
                // As dockerd: the error on the stream's stdout (framed without a terminal);
                // the exec's exit code (126, or 127 when not found) is in its inspect.
                let text = format!("{err}\r\n");
                if !raw {
                    let hdr = frames::header(frames::STDOUT, text.len());
                    let _ = client.write_all(&hdr).await;
                }
                let _ = client.write_all(text.as_bytes()).await;
                let _ = client.shutdown().await;
            }
        }
    });
    let ct = content_type(raw);
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "tcp")
        .header(header::CONTENT_TYPE, ct)
        .body(Body::empty())
        .expect("response"))
}

/// `POST /exec/{id}/resize`.
pub async fn exec_resize(
    State(engine): E,
    Path(id): Path<String>,
    Query(q): Query<ResizeQuery>,
) -> Result<Response, ApiError> {
    engine
        .containers
        .exec_resize(&id, q.h.unwrap_or(0), q.w.unwrap_or(0))
        .await?;
    Ok(StatusCode::OK.into_response())
}

/// `GET /exec/{id}/json`.
pub async fn exec_inspect(
    State(engine): E,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let x = engine.containers.exec_get(&id)?;
    let p = &x.spec;
    let mut out = json!({
        "ID": x.id.as_str(),
        "Running": x.running,
        "ExitCode": x.exit_code,
        "ProcessConfig": {
            "tty": p.tty, "entrypoint": p.cmd.first(), "arguments": p.cmd.get(1..).unwrap_or_default(),
            "privileged": p.privileged,
        },
        "OpenStdin": p.stdin, "OpenStderr": p.stderr, "OpenStdout": p.stdout,
        "CanRemove": false,
        "ContainerID": x.container,
        // As dockerd, which keeps the parsed bytes and writes them as Go writes a byte
        // slice: base64 (`ctrl-x` is "GA==").
        "DetachKeys": crate::detach::parse(&p.detach_keys)
            .filter(|_| !p.detach_keys.is_empty())
            .map(|k| base64::engine::general_purpose::STANDARD.encode(k))
            .unwrap_or_default(),
        "Pid": 0,
    });
    // As dockerd: `user` only when the exec names one.
    if !p.user.is_empty() {
        out["ProcessConfig"]["user"] = json!(p.user);
    }
    Ok(Json(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_config_becomes_a_spec() {
        let c: ExecConfig = serde_json::from_value(json!({
            "Cmd": ["sh", "-c", "echo x"], "Env": ["A=1"], "User": "1:2", "WorkingDir": "/w",
            "Tty": true, "AttachStdout": true, "Privileged": true
        }))
        .unwrap();
        let s = exec_spec(c);
        assert_eq!(s.cmd, ["sh", "-c", "echo x"]);
        assert_eq!(
            (s.env.as_slice(), s.user.as_str(), s.workdir.as_str()),
            (&["A=1".to_string()][..], "1:2", "/w")
        );
        assert!(s.tty && s.stdout && s.privileged && !s.stdin && !s.stderr);
        assert_eq!(exec_spec(ExecConfig::default()), ExecSpec::default());
    }
}
