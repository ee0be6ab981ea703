//! The admin HTTP port: `/healthz`, `/readyz`, `/metrics`, and text endpoints
//! that parts add (session tables and the like).
//!
//! A deliberately small HTTP/1.1 server: one request per connection, a
//! bounded request head, a read deadline. It serves operators and scrapers,
//! not the public.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::context::Context;

/// Largest request head we read; anything longer is refused.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// Time a client gets to send its request head.
const READ_DEADLINE: Duration = Duration::from_secs(5);

type Handler = Arc<dyn Fn() -> String + Send + Sync>;

/// Extra `GET` endpoints, each answering `text/plain`.
#[derive(Clone, Default)]
pub struct Endpoints(Arc<Mutex<BTreeMap<String, Handler>>>);

impl Endpoints {
    pub fn add(&self, path: &str, handler: impl Fn() -> String + Send + Sync + 'static) {
        self.lock().insert(path.to_owned(), Arc::new(handler));
    }

    fn get(&self, path: &str) -> Option<Handler> {
        self.lock().get(path).cloned()
    }

    fn paths(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Handler>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Binds the admin port and logs `admin listening on ADDR`.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|err| anyhow::anyhow!("admin: cannot listen on {addr}: {err}"))?;
    tracing::info!("admin listening on {}", listener.local_addr()?);
    Ok(listener)
}

/// Serves the admin port for as long as the process runs: through the
/// drain after SIGTERM too, when `/readyz` answers 503 (a refused connection
/// would tell a load balancer less).
pub async fn serve(listener: TcpListener, ctx: Context) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let ctx = ctx.clone();
                tokio::spawn(async move {
                    if let Err(err) = handle(stream, &ctx).await {
                        tracing::debug!("admin connection: {err}");
                    }
                });
            }
            Err(err) => {
                tracing::warn!("admin accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn handle(mut stream: TcpStream, ctx: &Context) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_DEADLINE, read_head(&mut stream)).await {
        Ok(Ok(Some(head))) => head,
        Ok(Ok(None)) => {
            return respond(&mut stream, 431, "text/plain", "request head too large\n").await
        }
        Ok(Err(err)) => return Err(err),
        Err(_) => return Ok(()),
    };
    let mut parts = head.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return respond(&mut stream, 400, "text/plain", "bad request\n").await;
    };
    if method != "GET" && method != "HEAD" {
        return respond(&mut stream, 405, "text/plain", "only GET\n").await;
    }
    let path = target.split('?').next().unwrap_or(target);
    let (status, content_type, body) = route(path, ctx);
    respond(&mut stream, status, content_type, &body).await
}

fn route(path: &str, ctx: &Context) -> (u16, &'static str, String) {
    match path {
        "/healthz" | "/livez" => (200, "text/plain", "ok\n".to_owned()),
        "/readyz" => {
            let not_ready = ctx.health.not_ready();
            if not_ready.is_empty() {
                (200, "text/plain", "ready\n".to_owned())
            } else {
                (
                    503,
                    "text/plain",
                    format!("not ready: {}\n", not_ready.join(", ")),
                )
            }
        }
        "/metrics" => (200, "text/plain; version=0.0.4", ctx.registry.render()),
        "/" => {
            let mut body = String::from("/healthz\n/readyz\n/metrics\n");
            for path in ctx.endpoints.paths() {
                body.push_str(&path);
                body.push('\n');
            }
            (200, "text/plain", body)
        }
        other => match ctx.endpoints.get(other) {
            Some(handler) => (200, "text/plain", handler()),
            None => (404, "text/plain", "not found\n".to_owned()),
        },
    }
}

/// Reads up to the blank line that ends the request head. `None` if too long.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<String>> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n") {
            break;
        }
        if buf.len() > MAX_REQUEST_HEAD {
            return Ok(None);
        }
    }
    Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
}

async fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &str,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
