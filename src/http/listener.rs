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
//!   and dropped if nothing moves for as long again (a client that stopped
//!   reading its answer).
//! - A request body that pauses longer than `ROSTER_BODY_READ_TIMEOUT_SECS`
//!   is refused (the whole request still has `ROSTER_REQUEST_TIMEOUT_SECS`).
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    pin::{Pin, pin},
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use axum::Router;
use hyper::{server::conn::http1, service::Service as _};
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
    time::Instant,
};
use tower_http::timeout::RequestBodyTimeout;

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
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true);
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
        let Some(client) = clients.admit(peer.ip(), config.max_connections_per_client) else {
            tracing::debug!(%peer, "too many connections from this client; closed");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            stream,
            activity: Arc::clone(&activity),
        });
        let service = match tower::Service::call(&mut make_service, peer).await {
            Ok(service) => service,
            Err(never) => match never {},
        };
        let service =
            TowerToHyperService::new(RequestBodyTimeout::new(service, config.body_read_timeout));
        let busy = Arc::clone(&activity);
        let service = hyper::service::service_fn(move |request| {
            let handling = Handling::start(&busy);
            let answer = service.call(request);
            async move {
                let _handling = handling;
                answer.await
            }
        });
        let connection = http.serve_connection(io, service);
        let mut stop = stop_rx.clone();
        let idle_timeout = config.idle_timeout;
        tokio::spawn(async move {
            // The slots are free again when the connection ends.
            let _permit = permit;
            let _client = client;
            let mut connection = pin!(connection);
            let mut idle = pin!(tokio::time::sleep(idle_timeout));
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "connection ended");
                        }
                        break;
                    }
                    _ = stop.changed(), if !closing => {
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                        idle.as_mut().reset(Instant::now() + idle_timeout);
                    }
                    () = &mut idle => {
                        let until = activity.last() + idle_timeout;
                        if Instant::now() < until {
                            idle.as_mut().reset(until);
                        } else if closing && activity.handling.load(Ordering::Relaxed) == 0 {
                            // Still nothing moving since it was asked to
                            // close, and no request being handled: a client
                            // that stopped reading its answer. Drop it.
                            break;
                        } else {
                            closing = true;
                            connection.as_mut().graceful_shutdown();
                            idle.as_mut().reset(Instant::now() + idle_timeout);
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

/// The network a client's connections are counted under: its IPv4
/// address, or the /64 of its IPv6 address (one host's usual allocation).
pub fn client_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
        v4 => v4,
    }
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

/// When bytes last moved on a connection, and how many of its requests
/// are being handled.
struct Activity {
    accepted: Instant,
    last_ms: AtomicU64,
    handling: AtomicUsize,
}

/// One request being handled on a connection, until dropped.
struct Handling(Arc<Activity>);

impl Handling {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.handling.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(activity))
    }
}

impl Drop for Handling {
    fn drop(&mut self) {
        self.0.handling.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            accepted: Instant::now(),
            last_ms: AtomicU64::new(0),
            handling: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.accepted + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
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
        let poll = Pin::new(&mut this.stream).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll
            && *n > 0
        {
            this.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &poll
            && *n > 0
        {
            this.activity.touch();
        }
        poll
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
    fn clients_are_ipv4_addresses_and_ipv6_networks() {
        let ip = |text: &str| text.parse::<IpAddr>().ok();
        assert_eq!(
            ip("2001:db8:1:2:aaaa::1").map(client_network),
            ip("2001:db8:1:2::")
        );
        assert_eq!(ip("::ffff:10.0.0.7").map(client_network), ip("10.0.0.7"));
        assert_eq!(ip("10.0.0.7").map(client_network), ip("10.0.0.7"));
    }

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
