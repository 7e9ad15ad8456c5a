//! A small Lambda Runtime API (2018-06-01) emulator: starts a function's process as Lambda does
//! (`AWS_LAMBDA_RUNTIME_API` and the usual environment), times the bootstrap's exec → first
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
    /// The invocations after the first (warm), in order.
    pub warm: Vec<Duration>,
    pub peak_rss_kb: u64,
    pub response: Vec<u8>,
    /// The invocation produced a response (not an error) with a 2xx/3xx status.
    pub succeeded: bool,
}

#[derive(Default)]
struct State {
    nexts: usize,
    ready_at: Option<Instant>,
    /// When each event was handed over, and when its answer came.
    sent_at: Vec<Instant>,
    done_at: Vec<Instant>,
    /// The first invocation's answer.
    response: Option<Vec<u8>>,
    error: Option<String>,
}

type Resp = hyper::Response<Full<Bytes>>;

async fn serve(
    req: hyper::Request<Incoming>,
    state: Arc<Mutex<State>>,
    done: Arc<Notify>,
    events: Arc<Vec<Vec<u8>>>,
) -> Resp {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if method == hyper::Method::GET && path == "/2018-06-01/runtime/invocation/next" {
        let n = {
            let mut s = state.lock().unwrap();
            s.nexts += 1;
            if s.nexts == 1 {
                s.ready_at = Some(Instant::now());
            }
            s.nexts - 1
        };
        let Some(event) = events.get(n) else {
            // No more events: the function waits for its next one; it will be stopped instead.
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return hyper::Response::builder().status(500).body(Full::new(Bytes::new())).unwrap_or_default();
        };
        state.lock().unwrap().sent_at.push(Instant::now());
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
            .body(Full::new(Bytes::from(event.clone())))
            .unwrap_or_default();
    }
    if method == hyper::Method::POST && (path.ends_with("/response") || path.ends_with("/error")) {
        let mut s = state.lock().unwrap();
        s.done_at.push(Instant::now());
        if s.done_at.len() == 1 {
            if path.ends_with("/response") {
                s.response = Some(body.to_vec());
            } else {
                s.error = Some(String::from_utf8_lossy(&body).into_owned());
            }
        }
        if s.done_at.len() == events.len() {
            done.notify_one();
        }
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

/// Where a function's process runs: its memory size (Lambda's `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`)
/// and, when given, the cgroup v1 cpu directory whose quota is that size's CPU share.
pub struct Sandbox<'a> {
    pub memory_mb: u32,
    pub cgroup: Option<&'a Path>,
}

/// One cold start of `program` answering `events` in turn (the first cold, the rest warm).
pub async fn cold_run(
    program: &Path,
    args: &[&str],
    cwd: &Path,
    env: &[(String, String)],
    events: Vec<Value>,
    sandbox: &Sandbox<'_>,
) -> Result<ColdRun, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let state = Arc::new(Mutex::new(State::default()));
    let done = Arc::new(Notify::new());
    let event =
        Arc::new(events.iter().map(serde_json::to_vec).collect::<Result<Vec<_>, _>>().map_err(|e| e.to_string())?);
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
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", sandbox.memory_mb.to_string())
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/bench")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_EXECUTION_ENV", "AWS_Lambda_bench")
        .env("LAMBDA_TASK_ROOT", cwd)
        .env("_HANDLER", "bootstrap")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    // The child moves itself into the cgroup between fork and exec (writing 0 to `cgroup.procs`
    // moves the writer), so everything it runs is under the quota. The file is opened here: the
    // child only writes (async-signal-safe: no allocation after fork).
    let procs = match sandbox.cgroup {
        Some(dir) => Some(
            std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))
                .map_err(|e| format!("{}: {e}", dir.display()))?,
        ),
        None => None,
    };
    // Init is timed from the exec, as Lambda's init duration is from its runtime's start: the
    // child reads the monotonic clock just before exec (after joining the cgroup) and writes it
    // to a close-on-exec pipe. What comes before is the lab's, not the function's: the fork of
    // this (large) process, and the cgroup move, which waits for an RCU grace period when no
    // other move happened in the last few milliseconds (5–20 ms here, measured without any CPU
    // quota throttling) — a cost that fell on long-running functions' starts and not on the
    // empty Lambda's back-to-back ones.
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-element array for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 returned two fresh descriptors that nothing else owns.
    let (exec_read, exec_write) = unsafe {
        use std::os::fd::FromRawFd;
        (std::fs::File::from_raw_fd(fds[0]), std::fs::File::from_raw_fd(fds[1]))
    };
    {
        use std::os::fd::AsRawFd;
        let procs_fd = procs.as_ref().map(|f| f.as_raw_fd());
        let clock_fd = exec_write.as_raw_fd();
        // SAFETY: runs in the forked child before exec; it only makes system calls on open
        // descriptors (write, clock_gettime): no allocation, no lock, no close.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = procs_fd {
                    if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                let stamp = monotonic_ns().to_ne_bytes();
                libc::write(clock_fd, stamp.as_ptr().cast(), stamp.len());
                Ok(())
            });
        }
    }
    // A new execution environment starts with its whole CPU allotment: let the cgroup's quota
    // refill (two CFS periods) after the previous process, which may have spent this period's.
    if let Some(dir) = sandbox.cgroup {
        let period_us: u64 = std::fs::read_to_string(dir.join("cpu.cfs_period_us"))
            .ok()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(100_000);
        tokio::time::sleep(Duration::from_micros(2 * period_us)).await;
    }
    let (spawned, spawned_ns) = (Instant::now(), monotonic_ns());
    let mut child = cmd.spawn().map_err(|e| format!("{}: {e}", program.display()))?;
    drop(exec_write);
    drop(procs);
    let pid = child.id().unwrap_or(0);
    let waited = tokio::time::timeout(Duration::from_secs(30), done.notified()).await;
    let rss = peak_rss_kb(pid);
    let _ = child.kill().await;
    server.abort();
    waited.map_err(|_| "no response within 30 s".to_owned())?;
    let s = state.lock().unwrap();
    let ready = s.ready_at.ok_or("never asked for an event")?;
    let mut stamp = [0u8; 8];
    let exec_ns = {
        use std::io::Read;
        let mut exec_read = exec_read;
        exec_read.read_exact(&mut stamp).map_err(|e| format!("the child's exec time: {e}"))?;
        u64::from_ne_bytes(stamp)
    };
    let started = spawned + Duration::from_nanos(exec_ns.saturating_sub(spawned_ns));
    if s.done_at.len() < s.sent_at.len() || s.sent_at.is_empty() {
        return Err("no answer".into());
    }
    let took: Vec<Duration> = s.sent_at.iter().zip(&s.done_at).map(|(a, b)| *b - *a).collect();
    let response = s.response.clone().unwrap_or_else(|| s.error.clone().unwrap_or_default().into_bytes());
    let status = serde_json::from_slice::<Value>(&response).ok().and_then(|v| v["statusCode"].as_u64());
    let succeeded = s.error.is_none() && status.is_none_or(|c| (200..400).contains(&c));
    Ok(ColdRun {
        init: ready - started,
        first_invocation: took[0],
        warm: took[1..].to_vec(),
        peak_rss_kb: rss,
        response,
        succeeded,
    })
}

/// CLOCK_MONOTONIC in nanoseconds (what [`Instant`] reads on Linux, as a number a child can send).
fn monotonic_ns() -> u64 {
    let mut now = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `now` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}
