//! A small Lambda Runtime API (2018-06-01) emulator: starts a function's process as Lambda does
//! (`AWS_LAMBDA_RUNTIME_API` and the usual environment), times process start → first
//! `GET /runtime/invocation/next` (init) and event → response (first invocation), and reads the
//! process's peak RSS.

use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::sync::Notify;

pub struct ColdRun {
    pub init: Duration,
    pub first_invocation: Duration,
    pub peak_rss_kb: u64,
    pub response: Vec<u8>,
    /// The invocation produced a response (not an error) with a 2xx/3xx status.
    pub succeeded: bool,
}

#[derive(Default)]
struct State {
    nexts: usize,
    ready_at: Option<Instant>,
    sent_at: Option<Instant>,
    done_at: Option<Instant>,
    response: Option<Vec<u8>>,
    error: Option<String>,
}

type Resp = hyper::Response<Full<Bytes>>;

async fn serve(
    req: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
    done: Arc<Notify>,
    event: Arc<Vec<u8>>,
) -> Resp {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let first = {
            let mut s = state.lock().unwrap();
            s.nexts += 1;
            if s.nexts == 1 {
                s.ready_at = Some(Instant::now());
            }
            s.nexts == 1
        };
        if !first {
            // The function waits for its next event; it will be stopped instead.
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
        state.lock().unwrap().sent_at = Some(Instant::now());
        let deadline = (std::time::SystemTime::now() + Duration::from_secs(10))
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        return hyper::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("lambda-runtime-aws-request-id", "bench-request-1")
            .header("lambda-runtime-deadline-ms", deadline.to_string())
            .header("lambda-runtime-invoked-function-arn", "arn:aws:lambda:us-east-1:000000000000:function:bench")
            .header(
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
            )
            .body(Full::new(Bytes::from(event.as_ref().clone())))
            .unwrap_or_default();
    }
    if method == hyper::Method::POST && path.ends_with("/response") {
        let mut s = state.lock().unwrap();
        s.done_at = Some(Instant::now());
        s.response = Some(body.to_vec());
        done.notify_one();
    } else if method == hyper::Method::POST && path.ends_with("/error") {
        let mut s = state.lock().unwrap();
        s.done_at = Some(Instant::now());
        s.error = Some(String::from_utf8_lossy(&body).into_owned());
        done.notify_one();
    }
    hyper::Response::builder().status(202).body(Full::new(Bytes::from_static(b"{}"))).unwrap_or_default()
}

fn peak_rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// One cold start of `program` answering `event`.
pub async fn cold_run(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(String, String)],
    event: Value,
) -> Result<ColdRun, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let state = Arc::new(Mutex::new(State::default()));
    let done = Arc::new(Notify::new());
    let event = Arc::new(serde_json::to_vec(&event).map_err(|e| e.to_string())?);
    let (st, dn, ev) = (state.clone(), done.clone(), event.clone());
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let (st, dn, ev) = (st.clone(), dn.clone(), ev.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req| {
                    let (st, dn, ev) = (st.clone(), dn.clone(), ev.clone());
                    async move { Ok::<_, Infallible>(serve(req, st, dn, ev).await) }
                });
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    });
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .current_dir(cwd)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_bench")
        .env("LAMBDA_TASK_ROOT", cwd)
        .env("_HANDLER", "bootstrap")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", program.display()))?;
    let pid = child.id().unwrap_or(0);
    let waited = tokio::time::timeout(Duration::from_secs(30), done.notified()).await;
    let rss = peak_rss_kb(pid);
    let _ = child.kill().await;
    server.abort();
    waited.map_err(|_| "no response within 30 s".to_owned())?;
    let s = state.lock().unwrap();
    let (ready, sent, done_at) = (
        s.ready_at.ok_or("never asked for an event")?,
        s.sent_at.ok_or("no event sent")?,
        s.done_at.ok_or("no answer")?,
    );
    let response = s.response.clone().unwrap_or_else(|| s.error.clone().unwrap_or_default().into_bytes());
    let status = serde_json::from_slice::<Value>(&response).ok().and_then(|v| v["statusCode"].as_u64());
    let succeeded = s.error.is_none() && status.is_none_or(|c| (200..400).contains(&c));
    Ok(ColdRun { init: ready - started, first_invocation: done_at - sent, peak_rss_kb: rss, response, succeeded })
}
