//! The network side: a hickory-server [`RequestHandler`] over the answerer
//! (serving TCP through hickory's [`Server`]), and a UDP fast path — one
//! blocking `SO_REUSEPORT` socket per worker thread — sharing the same
//! answerer, so both transports give identical answers.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo, Server};
use hickory_server::zone_handler::MessageResponseBuilder;
use socket2::{Domain, Protocol as SockProto, Socket, Type};

use crate::Error;
use crate::answerer::Answerer;
use crate::metrics::Metrics;

/// Where and how to serve.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// UDP and TCP address (port 0: any free port, the same for both).
    pub listen: SocketAddr,
    /// UDP worker threads (default: one per CPU).
    pub udp_workers: usize,
    /// Idle timeout of TCP connections.
    pub tcp_timeout: Duration,
}

impl ServerConfig {
    /// Defaults for `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            udp_workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            tcp_timeout: Duration::from_secs(10),
        }
    }
}

/// The hickory request handler: answers every request from the answerer.
#[derive(Clone, Debug)]
pub struct Handler {
    answerer: Arc<Answerer>,
    metrics: Arc<Metrics>,
}

impl Handler {
    /// A handler over `answerer`, counting into `metrics`.
    pub fn new(answerer: Arc<Answerer>, metrics: Arc<Metrics>) -> Self {
        Self { answerer, metrics }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let start = Instant::now();
        let builder = MessageResponseBuilder::from_message_request(request);
        let response = match Message::from_vec(request.as_slice()) {
            Ok(m) => self.answerer.answer_message(&m),
            Err(_) => {
                let mut m = Message::response(request.metadata.id, request.metadata.op_code);
                m.metadata.response_code = hickory_proto::op::ResponseCode::FormErr;
                m
            }
        };
        let mut builder = builder;
        if let Some(edns) = &response.edns {
            builder.edns(edns);
        }
        let msg = builder.build(
            response.metadata,
            response.answers.iter(),
            response.authorities.iter(),
            std::iter::empty(),
            response.additionals.iter(),
        );
        let tcp = request.protocol() != hickory_server::net::xfer::Protocol::Udp;
        let info = match response_handle.send_response(msg).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "sending response");
                let mut metadata = hickory_proto::op::Metadata::new(
                    request.metadata.id,
                    hickory_proto::op::MessageType::Response,
                    request.metadata.op_code,
                );
                metadata.response_code = hickory_proto::op::ResponseCode::ServFail;
                hickory_proto::op::Header {
                    metadata,
                    counts: Default::default(),
                }
                .into()
            }
        };
        self.metrics.query(
            response.queries.first().map(Query::query_type),
            response.metadata.response_code,
            tcp,
            start.elapsed(),
        );
        info
    }
}

/// A running DNS server; stops when dropped or on [`DnsServer::shutdown`].
pub struct DnsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    udp: Vec<JoinHandle<()>>,
    tcp: Server<Handler>,
}

impl std::fmt::Debug for DnsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl DnsServer {
    /// Binds UDP and TCP on `config.listen` and starts answering. Must be
    /// called within a tokio runtime (TCP runs on it; UDP on its own threads).
    pub async fn start(
        config: ServerConfig,
        answerer: Arc<Answerer>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, Error> {
        let (addr, sockets, tcp_listener) = bind_all(config.listen, config.udp_workers).await?;
        let stop = Arc::new(AtomicBool::new(false));
        let mut udp = Vec::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            let answerer = answerer.clone();
            let metrics = metrics.clone();
            let stop = stop.clone();
            let handle = std::thread::Builder::new()
                .name(format!("dns-udp-{i}"))
                .spawn(move || udp_loop(&socket, &answerer, &metrics, &stop))
                .map_err(|e| Error::io("spawning a UDP worker", e))?;
            udp.push(handle);
        }
        let mut tcp = Server::new(Handler::new(answerer, metrics));
        tcp.register_listener(tcp_listener, config.tcp_timeout, 64 * 1024);
        tracing::info!(%addr, workers = udp.len(), "dns serving (udp, tcp)");
        Ok(Self {
            addr,
            stop,
            udp,
            tcp,
        })
    }

    /// The bound address (UDP and TCP).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops both transports and waits for the UDP workers.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.tcp.shutdown_gracefully().await;
        for h in self.udp.drain(..) {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }

    /// Serves until the TCP side fails (it does not, short of a socket error).
    pub async fn run(mut self) -> Result<(), Error> {
        let r = self.tcp.block_until_done().await;
        self.stop.store(true, Ordering::Relaxed);
        r.map_err(|e| Error::io("serving TCP", std::io::Error::other(e.to_string())))
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.tcp.shutdown_token().cancel();
    }
}

/// How many ports [`bind_all`] tries when the kernel chooses.
const PORT_ATTEMPTS: usize = 16;

/// Binds `workers` UDP sockets and the TCP listener on one port.
///
/// On a given port the UDP sockets are SO_REUSEPORT, so the kernel spreads
/// queries over the workers. With port 0 (tests, benches) the workers share
/// one plain socket instead: a SO_REUSEPORT socket on a port the kernel
/// chose can be joined by any other SO_REUSEPORT socket of the same user
/// that asks for port 0 — `dig` (BIND's client sockets set it) was given
/// such a port once, connected to it and read back its own query. A plain
/// socket's port is never handed out again while it is open. TCP may still
/// hold that port elsewhere: then another is tried.
async fn bind_all(
    listen: SocketAddr,
    workers: usize,
) -> Result<(SocketAddr, Vec<UdpSocket>, tokio::net::TcpListener), Error> {
    if listen.port() != 0 {
        let sockets = (0..workers.max(1))
            .map(|_| bind_udp(listen, true))
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| Error::io(format!("binding UDP {listen}"), e))?;
        let tcp = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| Error::io(format!("binding TCP {listen}"), e))?;
        return Ok((listen, sockets, tcp));
    }
    for _ in 0..PORT_ATTEMPTS {
        let udp =
            bind_udp(listen, false).map_err(|e| Error::io(format!("binding UDP {listen}"), e))?;
        let addr = udp
            .local_addr()
            .map_err(|e| Error::io("reading the UDP address", e))?;
        match tokio::net::TcpListener::bind(addr).await {
            Ok(tcp) => {
                let mut sockets = vec![];
                for _ in 1..workers.max(1) {
                    sockets.push(
                        udp.try_clone()
                            .map_err(|e| Error::io("sharing the UDP socket", e))?,
                    );
                }
                sockets.push(udp);
                return Ok((addr, sockets, tcp));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::debug!(%addr, "TCP port taken; choosing another port");
            }
            Err(e) => return Err(Error::io(format!("binding TCP {addr}"), e)),
        }
    }
    Err(Error::io(
        format!("binding TCP on {listen}"),
        std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("every one of {PORT_ATTEMPTS} UDP ports the kernel chose was taken for TCP"),
        ),
    ))
}

fn bind_udp(addr: SocketAddr, reuse_port: bool) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(SockProto::UDP))?;
    socket.set_reuse_port(reuse_port)?;
    let _ = socket.set_recv_buffer_size(4 << 20);
    let _ = socket.set_send_buffer_size(4 << 20);
    socket.bind(&addr.into())?;
    // Lets the worker notice shutdown.
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(socket.into())
}

/// Entries kept in each UDP worker's answer cache before it is flushed.
const CACHE_ENTRIES: usize = 64 * 1024;

struct Cached {
    bytes: Vec<u8>,
    qtype: Option<hickory_proto::rr::RecordType>,
    rcode: hickory_proto::op::ResponseCode,
}

fn udp_loop(socket: &UdpSocket, answerer: &Answerer, metrics: &Metrics, stop: &AtomicBool) {
    let mut buf = [0u8; 4096];
    // Per-worker answer cache: the request bytes after the id map to the
    // encoded answer, valid for one zone generation. Only answers that do
    // not rotate are kept; the id is patched into a copy on a hit.
    let mut cache: std::collections::HashMap<Vec<u8>, Cached> = std::collections::HashMap::new();
    let mut generation = answerer.generation();
    while !stop.load(Ordering::Relaxed) {
        let (n, src) = match socket.recv_from(&mut buf) {
            Ok(x) => x,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "udp receive");
                continue;
            }
        };
        if src.port() == 0 {
            metrics.dropped();
            continue;
        }
        let start = Instant::now();
        let Some(packet) = buf.get(..n) else {
            continue;
        };
        let now = answerer.generation();
        if now != generation {
            cache.clear();
            generation = now;
        }
        if n >= 12
            && let Some(hit) = cache.get_mut(&packet[2..])
        {
            hit.bytes[0] = packet[0];
            hit.bytes[1] = packet[1];
            if let Err(error) = socket.send_to(&hit.bytes, src) {
                tracing::debug!(%error, %src, "udp send");
            }
            metrics.query(hit.qtype, hit.rcode, false, start.elapsed());
            continue;
        }
        let Some(answer) = answerer.answer_packet(packet, true) else {
            metrics.dropped();
            continue;
        };
        if let Err(error) = socket.send_to(&answer.bytes, src) {
            tracing::debug!(%error, %src, "udp send");
        }
        metrics.query(answer.qtype, answer.rcode, false, start.elapsed());
        if answer.cacheable && answer.bytes.len() >= 12 {
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            cache.insert(
                packet[2..].to_vec(),
                Cached {
                    bytes: answer.bytes,
                    qtype: answer.qtype,
                    rcode: answer.rcode,
                },
            );
        }
    }
}
