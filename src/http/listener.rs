//! The accept loop: hyper's HTTP/1 connections with the limits axum's own
//! `serve` cannot set.
//! - At most `ROSTER_MAX_CONNECTIONS` connections are open; over it, new
//!   ones wait in the kernel's backlog, unaccepted, and those already open
//!   are served as usual.
//! - At most `ROSTER_MAX_CONNECTIONS_PER_CLIENT` of them come from one
//!   client (an IPv4 address, or an IPv6 /64); more are closed as soon as
//!   they are accepted, so that one client's slow connections cannot take
//!   every slot.
//! - A client has `ROSTER_HEADER_READ_TIMEOUT_SECS` to send a request's
//!   headers, counted from when the connection is ready for one (so headers
//!   that never end, and a connection that never sends any, are cut off).
//! - A connection with no byte moving either way for
//!   `ROSTER_IDLE_TIMEOUT_SECS` is closed once its request, if any, is done,
//!   and dropped if nothing moves for a period more with no request in hand
//!   (a client that stopped reading its answer).
//!
//! A watchdog per connection keeps these deadlines, looking twice per the
//! shorter period (so each holds to within half of it): reading and writing
//! only set a flag, and a request costs no timer of its own. The header
//! deadline holds for a client that sends bytes making no head; one that
//! sends nothing falls to the idle deadline.
//! - A request body that pauses longer than `ROSTER_BODY_READ_TIMEOUT_SECS`
//!   is refused (the whole request still has `ROSTER_REQUEST_TIMEOUT_SECS`).
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    pin::{Pin, pin},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::Router;
use hyper::{body::Incoming, server::conn::http1, service::Service as _};
use hyper_util::{rt::TokioIo, service::TowerToHyperService};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    time::Instant,
};

use super::{body_timeout::PatientBody, client_address::client_network};
use crate::config::Config;

/// Serves `router` on `listener` until `shutdown` resolves; then stops
/// accepting, lets open connections finish their requests, and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Each call gives the router with the peer's `ConnectInfo<SocketAddr>`.
    let mut make_service = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut http = http1::Builder::new();
    // hyper's own header-read timeout arms a timer for every request (7 %
    // of `{ __typename }`); the watchdog below keeps that deadline at one
    // timer per connection.
    http.keep_alive(true);
    let cap = config.max_connections;
    let slots = Arc::new(Semaphore::new(cap as usize));
    let (stop_tx, stop_rx) = watch::channel(());
    let clients = Arc::new(Clients::default());
    let mut shutdown = pin!(shutdown);
    'serve: loop {
        let permit = tokio::select! {
            biased;
            () = &mut shutdown => break 'serve,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break 'serve,
            },
        };
        let (stream, peer) = loop {
            tokio::select! {
                biased;
                () = &mut shutdown => break 'serve,
                accepted = listener.accept() => match accepted {
                    Ok(accepted) => break accepted,
                    Err(error) => on_accept_error(error).await,
                },
            }
        };
        // A trusted proxy carries many clients' connections: only the
        // overall cap applies to it.
        let share = if config.trusted_proxies.trusts(peer.ip()) {
            config.max_connections
        } else {
            config.max_connections_per_client
        };
        let Some(client) = clients.admit(peer.ip(), share) else {
            tracing::debug!(%peer, "too many connections from this client; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::default());
        let io = TokioIo::new(Tracked {
            stream,
            activity: Arc::clone(&activity),
        });
        let service = match tower::Service::call(&mut make_service, peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let service = TowerToHyperService::new(service);
        let busy = Arc::clone(&activity);
        let patience = config.body_read_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let handling = Handling::start(&busy);
            let answer = service.call(request.map(|body| PatientBody::new(body, patience)));
            async move {
                let _handling = handling;
                answer.await
            }
        });
        let connection = http.serve_connection(io, service);
        let mut stop = stop_rx.clone();
        let limits = Watchdog::new(config);
        tokio::spawn(async move {
            // The slots are free again when the connection ends.
            let _permit = permit;
            let _client = client;
            let mut connection = pin!(connection);
            let mut tick = pin!(tokio::time::sleep(limits.tick));
            let mut watch = limits.start();
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "connection ended");
                        }
                        break;
                    }
                    _ = stop.changed(), if watch.closing_since.is_none() => {
                        watch.closing_since = Some(Instant::now());
                        connection.as_mut().graceful_shutdown();
                    }
                    () = &mut tick => {
                        tick.as_mut().reset(Instant::now() + limits.tick);
                        match watch.look(&limits, &activity) {
                            Verdict::Fine => {}
                            Verdict::Close => connection.as_mut().graceful_shutdown(),
                            Verdict::Drop => break,
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    // Every connection: finish the request in hand, then close.
    stop_tx.send_replace(());
    // Each open connection holds a slot: once all are back, all are done.
    // A connection that neither finishes nor goes quiet is given up on
    // after a request's time and an idle period.
    let grace = config.request_timeout + config.idle_timeout;
    if tokio::time::timeout(grace, slots.acquire_many(cap))
        .await
        .is_err()
    {
        tracing::warn!(?grace, "connections still open at shutdown; closing them");
    }
    Ok(())
}

/// Open connections per client network.
#[derive(Default)]
struct Clients(Mutex<HashMap<IpAddr, usize>>);

/// One admitted connection of a client; counted until dropped.
struct Admitted {
    clients: Arc<Clients>,
    network: IpAddr,
}

impl Clients {
    /// Counts one more connection from `ip`, unless it already has `max`.
    fn admit(self: &Arc<Self>, ip: IpAddr, max: u32) -> Option<Admitted> {
        let network = client_network(ip);
        let mut open = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(network).or_default();
        if *count >= max as usize {
            return None;
        }
        *count += 1;
        Some(Admitted {
            clients: Arc::clone(self),
            network,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.network) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.network);
            }
        }
    }
}

async fn on_accept_error(error: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    // Out of file descriptors, say: wait for some to be freed.
    tracing::error!(%error, "accept error; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Whether bytes moved on a connection since the watchdog last looked (a
/// flag, so that reading and writing cost no clock), and how far its
/// requests have come.
#[derive(Default)]
struct Activity {
    moved: AtomicBool,
    /// Whether the client sent bytes since the watchdog last looked.
    sent: AtomicBool,
    /// Requests whose head was read, and those being handled.
    heads: AtomicUsize,
    handling: AtomicUsize,
}

impl Activity {
    fn touch(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    /// `poll`, a write's, noted if it wrote something.
    fn note_written(&self, poll: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        poll
    }
}

/// The limits a connection's watchdog enforces, looking every `tick`.
#[derive(Clone, Copy)]
struct Watchdog {
    tick: Duration,
    idle: Duration,
    header_read: Duration,
}

/// What the watchdog of one connection has seen.
struct Watch {
    last_moved: Instant,
    /// Since when the connection has waited for a request's head, and
    /// whether the client has sent bytes meanwhile.
    ready_since: Instant,
    sent_while_ready: bool,
    heads_seen: usize,
    closing_since: Option<Instant>,
}

/// What to do with a connection.
enum Verdict {
    Fine,
    /// Finish the request in hand, if any, then close.
    Close,
    /// Close now.
    Drop,
}

impl Watchdog {
    fn new(config: &Config) -> Self {
        let (idle, header_read) = (config.idle_timeout, config.header_read_timeout);
        // Looking twice per period keeps each deadline to within half of it.
        let tick = (idle.min(header_read) / 2).max(Duration::from_millis(50));
        Self {
            tick,
            idle,
            header_read,
        }
    }

    fn start(&self) -> Watch {
        let now = Instant::now();
        Watch {
            last_moved: now,
            ready_since: now,
            sent_while_ready: false,
            heads_seen: 0,
            closing_since: None,
        }
    }
}

impl Watch {
    fn look(&mut self, limits: &Watchdog, activity: &Activity) -> Verdict {
        let now = Instant::now();
        if activity.moved.swap(false, Ordering::Relaxed) {
            self.last_moved = now;
        }
        let sent = activity.sent.swap(false, Ordering::Relaxed);
        let heads = activity.heads.load(Ordering::Relaxed);
        let handling = activity.handling.load(Ordering::Relaxed);
        if heads != self.heads_seen || handling > 0 {
            self.heads_seen = heads;
            self.ready_since = now;
            self.sent_while_ready = false;
        } else {
            // Bytes from the client that make no head in time: headers that
            // never end. (A client reading a long answer sends nothing; a
            // silent one is the idle deadline's.)
            self.sent_while_ready |= sent;
            if self.sent_while_ready && now - self.ready_since >= limits.header_read {
                return Verdict::Drop;
            }
        }
        if now - self.last_moved < limits.idle {
            return Verdict::Fine;
        }
        match self.closing_since {
            None => {
                self.closing_since = Some(now);
                Verdict::Close
            }
            // Nothing moving for a period since it was asked to close, and
            // no request being handled: a client that stopped reading.
            Some(since) if handling == 0 && now - since >= limits.idle => Verdict::Drop,
            Some(_) => Verdict::Fine,
        }
    }
}

/// One request being handled on a connection, until dropped.
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.heads.fetch_add(1, Ordering::Relaxed);
        activity.handling.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(activity))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A TCP stream that notes when bytes move.
struct Tracked {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let poll = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() != before {
            this.activity.touch();
            this.activity.sent.store(true, Ordering::Relaxed);
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity
            .note_written(Pin::new(&mut this.stream).poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.activity
            .note_written(Pin::new(&mut this.stream).poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_at_most_its_share_of_connections() {
        let clients = Arc::new(Clients::default());
        let (a, b) = ("10.0.0.1".parse().ok(), "10.0.0.2".parse().ok());
        let (Some(a), Some(b)) = (a, b) else {
            panic!("addresses")
        };
        let first = clients.admit(a, 2);
        let second = clients.admit(a, 2);
        assert!(first.is_some() && second.is_some());
        assert!(clients.admit(a, 2).is_none());
        assert!(clients.admit(b, 2).is_some());
        drop(first);
        assert!(clients.admit(a, 2).is_some());
    }
}
