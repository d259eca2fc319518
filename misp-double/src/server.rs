//! The running server: [`MispDouble`] and its [`Options`], the accept thread, one thread per
//! connection, plain/TLS streams with short socket timeouts so every wait notices shutdown,
//! HTTP/1.1 keep-alive, request recording, and the execution of [`Fault`]s.

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockWriteGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::pki_types::CertificateDer;
use rustls::{ServerConfig, ServerConnection};

use crate::api::{self, Backend};
use crate::dataset::{Attribute, Dataset, Event};
use crate::fault::{self, Fault, Plan};
use crate::http::{self, RecordedRequest, Reject, Response, MAX_HEAD_BYTES};
use crate::store::Store;
use crate::tls;
use crate::DEFAULT_API_KEY;

/// Socket timeout used for every blocking read and write: the longest a handler goes without
/// checking the shutdown flag.
const POLL: Duration = Duration::from_millis(25);
/// How long `Drop` waits at most for the threads to finish.
const DROP_BUDGET: Duration = Duration::from_millis(180);
/// How long a rejected connection is drained before closing (avoids a RST eating the answer).
const LINGER: Duration = Duration::from_millis(250);
/// Chunk size for streamed bodies and socket reads.
const CHUNK: usize = 64 * 1024;

/// How to start a [`MispDouble`].
#[derive(Debug, Clone)]
pub struct Options {
    /// Serve HTTPS with a freshly generated CA (see [`MispDouble::ca_pem`]).
    pub tls: bool,
    /// The only API key accepted.
    pub api_key: String,
    /// The data served.
    pub dataset: Dataset,
    /// The key's role may not add sightings: getVersion says `perm_sighting: false`, and
    /// `/sightings/add` answers `403` "You do not have permission to use this functionality."
    pub read_only: bool,
}

impl Default for Options {
    /// Plain HTTP, [`DEFAULT_API_KEY`], [`Dataset::seed`].
    fn default() -> Options {
        Options {
            tls: false,
            api_key: DEFAULT_API_KEY.to_string(),
            dataset: Dataset::seed(),
            read_only: false,
        }
    }
}

/// State shared by the handle, the accept thread and the connection threads.
struct Shared {
    backend: Backend,
    fault: Mutex<Fault>,
    requests: Mutex<Vec<RecordedRequest>>,
    shutdown: AtomicBool,
    connections: AtomicUsize,
    active: AtomicUsize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Sleeps `d` in short slices; `false` if shutdown interrupted it.
    fn pause(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= end {
                return true;
            }
            thread::sleep((end - now).min(Duration::from_millis(10)));
        }
    }
}

/// Counts a live connection thread; decrements when dropped (even if the thread never ran).
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A running MISP double on `127.0.0.1` (ephemeral port). Dropping it stops the server,
/// closes every connection (hung handlers included) and returns within about 200 ms.
pub struct MispDouble {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: Option<(String, CertificateDer<'static>)>,
    listener: Option<TcpListener>,
    accept: Option<JoinHandle<()>>,
    /// Signalled when the accept thread ends (in a Mutex so that the handle is `Sync`).
    accept_done: Mutex<Receiver<()>>,
}

// The handle is shared between benchmark and test threads.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<MispDouble>();
};

impl std::fmt::Debug for MispDouble {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MispDouble")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl MispDouble {
    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    /// If the socket cannot be bound, a thread cannot be spawned or (with `tls`) the
    /// certificates cannot be generated; [`MispDouble::try_start`] returns these errors.
    pub fn start(opts: Options) -> MispDouble {
        match MispDouble::try_start(opts) {
            Ok(d) => d,
            Err(e) => panic!("misp-double: cannot start: {e}"),
        }
    }

    /// Like [`MispDouble::start`], returning setup errors instead of panicking.
    pub fn try_start(opts: Options) -> io::Result<MispDouble> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let material = if opts.tls {
            Some(tls::generate()?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            backend: Backend {
                api_key: opts.api_key,
                read_only: opts.read_only,
                store: RwLock::new(Store::new(opts.dataset)),
                next_sighting_id: AtomicU64::new(1),
                clock: Mutex::new(None),
            },
            fault: Mutex::new(Fault::None),
            requests: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            active: AtomicUsize::new(0),
        });
        let config = material.as_ref().map(|m| m.config.clone());
        let (done_tx, accept_done) = mpsc::channel();
        let accept_listener = listener.try_clone()?;
        let accept_shared = shared.clone();
        let accept = thread::Builder::new()
            .name("misp-double-accept".into())
            .spawn(move || {
                accept_loop(accept_listener, accept_shared, config);
                let _ = done_tx.send(());
            })?;
        Ok(MispDouble {
            shared,
            addr,
            tls: material.map(|m| (m.ca_pem, m.ca_der)),
            listener: Some(listener),
            accept: Some(accept),
            accept_done: Mutex::new(accept_done),
        })
    }

    /// A plain-HTTP double with the default options.
    pub fn http() -> MispDouble {
        MispDouble::start(Options::default())
    }

    /// An HTTPS double with the default options.
    pub fn https() -> MispDouble {
        MispDouble::start(Options {
            tls: true,
            ..Options::default()
        })
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.addr.port())
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The API key the double accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.backend.api_key
    }

    /// PEM of the CA that signed the server certificate (HTTPS doubles only).
    pub fn ca_pem(&self) -> Option<String> {
        self.tls.as_ref().map(|(pem, _)| pem.clone())
    }

    /// DER of the CA that signed the server certificate (HTTPS doubles only).
    pub fn ca_der(&self) -> Option<Vec<u8>> {
        self.tls.as_ref().map(|(_, der)| der.to_vec())
    }

    /// Writes [`MispDouble::ca_pem`] to `path`; `InvalidInput` for a plain-HTTP double.
    pub fn write_ca_file(&self, path: &Path) -> io::Result<()> {
        match &self.tls {
            Some((pem, _)) => std::fs::write(path, pem),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "misp-double: plain-HTTP double has no CA",
            )),
        }
    }

    /// Sets the fault applied to requests received from now on (`Fault::None` restores normal
    /// behaviour; `FailFirst(n)` restarts its countdown).
    pub fn set_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = fault;
    }

    /// The current fault (`FailFirst` shows the failures still to come).
    pub fn fault(&self) -> Fault {
        lock(&self.shared.fault).clone()
    }

    /// Every request received (rejected 411/413 ones included, with an empty body), in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Number of requests received for exactly this path (query excluded).
    pub fn request_count(&self, path: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Adds an event, replacing one with the same id. A plain data change: no timestamp or
    /// `published` side effect (see the MISP-like mutations below for those).
    pub fn add_event(&self, event: Event) {
        self.store().upsert_event(event);
    }

    /// Adds an attribute, replacing one with the same id. A plain data change, like
    /// [`MispDouble::add_event`]; [`MispDouble::add_attribute_as_user`] is what a MISP user
    /// adding an attribute does.
    pub fn add_attribute(&self, attr: Attribute) {
        self.store().upsert_attribute(attr);
    }

    /// Replaces the whole dataset.
    pub fn set_dataset(&self, dataset: Dataset) {
        self.store().replace(dataset);
    }

    /// A copy of the current dataset.
    pub fn dataset(&self) -> Dataset {
        self.shared.backend.read_store().dataset().clone()
    }

    /// Runs `f` on the current dataset without copying it (the double cannot serve writes
    /// meanwhile; requests keep being served).
    pub fn with_dataset<R>(&self, f: impl FnOnce(&Dataset) -> R) -> R {
        f(self.shared.backend.read_store().dataset())
    }

    fn store(&self) -> RwLockWriteGuard<'_, Store> {
        self.shared.backend.write_store()
    }

    // ------------------------------------------------------------------ clock

    /// Freezes the double's clock at this Unix time (`None`: real time again). Every timestamp
    /// the double sets (mutations, sightings without a timestamp) and every relative time
    /// filter (`"7d"`) uses it.
    pub fn set_clock(&self, unix: Option<u64>) {
        *lock(&self.shared.backend.clock) = unix;
    }

    /// Moves the clock forward by `secs`; a real-time clock becomes frozen at now + `secs`.
    pub fn advance_clock(&self, secs: u64) {
        let mut clock = lock(&self.shared.backend.clock);
        let now = clock.unwrap_or_else(api::now);
        *clock = Some(now.saturating_add(secs));
    }

    /// The double's current Unix time (frozen or real).
    pub fn now(&self) -> u64 {
        self.shared.backend.now()
    }

    // ------------------------------------------------------------------ MISP-like mutations

    /// Edits an attribute the way a MISP user does (`/attributes/edit`): applies `edit`, sets
    /// the attribute's `timestamp` to now, unpublishes its event and sets the event's
    /// `timestamp` to now. `false` when there is no attribute with this id.
    pub fn edit_attribute(&self, id: u64, edit: impl FnOnce(&mut Attribute)) -> bool {
        let now = self.now();
        self.store().edit_attribute(id, now, edit)
    }

    /// Adds an attribute the way a MISP user does (`/attributes/add`): `timestamp` = now, the
    /// event unpublished with `timestamp` = now. An `id` of 0 gets the next free id (above
    /// every existing one); an existing id is replaced. Returns the id, or `None` (nothing
    /// added) when its event does not exist.
    pub fn add_attribute_as_user(&self, attr: Attribute) -> Option<u64> {
        let now = self.now();
        self.store().add_attribute_as_user(attr, now)
    }

    /// Soft-deletes an attribute (`/attributes/delete/<id>`): `deleted` = true, its
    /// `timestamp` = now, its event unpublished with `timestamp` = now. `false` when unknown.
    pub fn soft_delete_attribute(&self, id: u64) -> bool {
        let now = self.now();
        self.store().soft_delete_attribute(id, now)
    }

    /// Edits an event's own fields (`/events/edit`): applies `edit`, then `published` = false
    /// and `timestamp` = now. `false` when unknown.
    pub fn edit_event(&self, id: u64, edit: impl FnOnce(&mut Event)) -> bool {
        let now = self.now();
        self.store().edit_event(id, now, edit)
    }

    /// Publishes an event (`/events/publish`): `published` = true, `publish_timestamp` = now;
    /// `timestamp` is NOT changed (MISP saves only `published` and `publish_timestamp`).
    /// `false` when unknown.
    pub fn publish_event(&self, id: u64) -> bool {
        let now = self.now();
        self.store().publish_event(id, now)
    }

    /// Unpublishes an event (`/events/unpublish`): `published` = false; `timestamp` and
    /// `publish_timestamp` are NOT changed. `false` when unknown.
    pub fn unpublish_event(&self, id: u64) -> bool {
        self.store().unpublish_event(id)
    }

    /// Hard-deletes an event and all its attributes (`/events/delete`). `false` when unknown.
    pub fn delete_event(&self, id: u64) -> bool {
        self.store().delete_event(id)
    }

    /// Switches an event to protected mode or back (`/events/protect`, `/events/unprotect`):
    /// `protected` set, `published` = false, `timestamp` = now. `false` when unknown.
    pub fn set_event_protected(&self, id: u64, protected: bool) -> bool {
        let now = self.now();
        self.store().set_event_protected(id, protected, now)
    }

    /// TCP connections accepted so far.
    pub fn connection_count(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for MispDouble {
    fn drop(&mut self) {
        let start = Instant::now();
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Some(listener) = self.listener.take() {
            wake_listener(&listener);
        }
        // Fallback wake-up for platforms where shutting a listener down does not unblock it.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(50));
        if let Some(handle) = self.accept.take() {
            let left = DROP_BUDGET.saturating_sub(start.elapsed());
            if lock(&self.accept_done).recv_timeout(left).is_ok() {
                let _ = handle.join();
            }
        }
        while self.shared.active.load(Ordering::SeqCst) > 0 && start.elapsed() < DROP_BUDGET {
            thread::sleep(Duration::from_millis(2));
        }
    }
}

/// Unblocks a thread sitting in `accept()` on this listener (Linux returns `EINVAL`).
#[cfg(unix)]
fn wake_listener(listener: &TcpListener) {
    use std::os::fd::AsRawFd;
    // SAFETY: `listener` owns a valid socket descriptor for the duration of the call;
    // shutdown(2) does not touch memory.
    unsafe {
        libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR);
    }
}

#[cfg(not(unix))]
fn wake_listener(_listener: &TcpListener) {}

/// Makes the next close send RST instead of FIN.
#[cfg(unix)]
fn set_linger_zero(sock: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: the descriptor is valid while `sock` lives; the pointer and length describe
    // the live `linger` value above.
    unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast::<libc::c_void>(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

#[cfg(not(unix))]
fn set_linger_zero(_sock: &TcpStream) {}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>, tls: Option<Arc<ServerConfig>>) {
    loop {
        match listener.accept() {
            Ok((sock, _)) => {
                if shared.stopping() {
                    break;
                }
                shared.connections.fetch_add(1, Ordering::SeqCst);
                shared.active.fetch_add(1, Ordering::SeqCst);
                let guard = ActiveGuard(shared.clone());
                let config = tls.clone();
                // If the spawn fails the closure, guard and socket included, is dropped.
                let _ = thread::Builder::new()
                    .name("misp-double-conn".into())
                    .spawn(move || {
                        let shared = guard.0.clone();
                        serve_connection(sock, &shared, config);
                        drop(guard);
                    });
            }
            Err(_) => {
                if shared.stopping() {
                    break;
                }
                // Out of descriptors or similar: back off briefly.
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// A TLS session over a socket with timeouts (any timeout error can simply be retried).
struct TlsStream {
    conn: ServerConnection,
    sock: TcpStream,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }

    /// One read attempt; `Ok(0)` is end of stream, timeouts come back as errors.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => loop {
                match t.conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if t.conn.wants_write() {
                    t.conn.write_tls(&mut t.sock)?;
                    continue;
                }
                if t.conn.read_tls(&mut t.sock)? == 0 {
                    return Ok(0);
                }
                if let Err(e) = t.conn.process_new_packets() {
                    // Send the alert, if any, then give up on this connection.
                    let _ = t.conn.write_tls(&mut t.sock);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            },
        }
    }

    /// Writes everything, retrying timeouts until the double shuts down.
    fn write_all(&mut self, data: &[u8], shutdown: &AtomicBool) -> io::Result<()> {
        let stop = || shutdown.load(Ordering::SeqCst);
        let gone = || io::Error::new(io::ErrorKind::ConnectionAborted, "misp-double stopping");
        match self {
            Stream::Plain(s) => {
                let mut off = 0;
                while off < data.len() {
                    match s.write(&data[off..]) {
                        Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                        Ok(n) => off += n,
                        Err(e) if is_timeout(&e) => {
                            if stop() {
                                return Err(gone());
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                Ok(())
            }
            Stream::Tls(t) => {
                let mut off = 0;
                loop {
                    while t.conn.wants_write() {
                        match t.conn.write_tls(&mut t.sock) {
                            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                            Ok(_) => {}
                            Err(e) if is_timeout(&e) => {
                                if stop() {
                                    return Err(gone());
                                }
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    if off >= data.len() {
                        return Ok(());
                    }
                    let n = t.conn.writer().write(&data[off..])?;
                    if n == 0 && !t.conn.wants_write() {
                        return Err(io::ErrorKind::WriteZero.into());
                    }
                    off += n;
                }
            }
        }
    }

    /// Orderly end: TLS `close_notify` (best effort).
    fn finish(&mut self, shutdown: &AtomicBool) {
        if let Stream::Tls(t) = self {
            t.conn.send_close_notify();
            let _ = self.write_all(&[], shutdown);
        }
    }
}

/// What happens to the connection after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// Serve the next request.
    KeepOpen,
    /// Close in an orderly way.
    Close,
    /// Drop the connection as it is (already reset, or shutting down).
    Abort,
}

enum Next {
    Request(http::Head),
    Reject(Reject, Option<RecordedRequest>),
    Closed,
}

struct Conn<'a> {
    stream: Stream,
    buf: Vec<u8>,
    shared: &'a Shared,
}

fn serve_connection(sock: TcpStream, shared: &Shared, tls: Option<Arc<ServerConfig>>) {
    let _ = sock.set_nodelay(true);
    let _ = sock.set_read_timeout(Some(POLL));
    let _ = sock.set_write_timeout(Some(POLL));
    let stream = match tls {
        Some(config) => match ServerConnection::new(config) {
            Ok(conn) => Stream::Tls(Box::new(TlsStream { conn, sock })),
            Err(_) => return,
        },
        None => Stream::Plain(sock),
    };
    let mut conn = Conn {
        stream,
        buf: Vec::with_capacity(8 * 1024),
        shared,
    };
    conn.run();
}

impl Conn<'_> {
    fn run(&mut self) {
        loop {
            match self.read_request() {
                Next::Closed => return,
                Next::Reject(reject, recorded) => {
                    if let Some(req) = recorded {
                        lock(&self.shared.requests).push(req);
                    }
                    self.reject(reject);
                    return;
                }
                Next::Request(head) => {
                    let req = head.request;
                    lock(&self.shared.requests).push(req.clone());
                    let plan = fault::plan(&mut lock(&self.shared.fault));
                    let close = req.wants_close(head.http10);
                    match self.respond(&req, head.http10, close, plan) {
                        After::KeepOpen if !close => continue,
                        After::Abort => return,
                        _ => {
                            self.stream.finish(&self.shared.shutdown);
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream, `Err` on failure or shutdown.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if is_timeout(&e) => {
                    if self.shared.stopping() {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn read_request(&mut self) -> Next {
        let mut scanned = 0;
        let head_end = loop {
            let blank = http::leading_blank_lines(&self.buf);
            if blank > 0 {
                self.buf.drain(..blank);
                scanned = 0;
            }
            if let Some(end) = http::find_head_end(&self.buf, scanned) {
                if end > MAX_HEAD_BYTES {
                    return Next::Reject(Reject::HeadTooLarge, None);
                }
                break end;
            }
            if self.buf.len() > MAX_HEAD_BYTES {
                return Next::Reject(Reject::HeadTooLarge, None);
            }
            scanned = self.buf.len();
            match self.fill() {
                Ok(0) | Err(_) => return Next::Closed,
                Ok(_) => {}
            }
        };
        let mut head = match http::parse_head(&self.buf[..head_end]) {
            Ok(h) => h,
            Err(_) => return Next::Reject(Reject::BadRequest, None),
        };
        let len = match http::body_length(&head.request) {
            Ok(n) => n,
            Err(reject) => {
                let keep = reject != Reject::BadRequest;
                return Next::Reject(reject, keep.then_some(head.request));
            }
        };
        let total = head_end + len;
        let expects_continue = head
            .request
            .header("expect")
            .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
        if expects_continue && self.buf.len() < total {
            let _ = self
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n", &self.shared.shutdown);
        }
        while self.buf.len() < total {
            match self.fill() {
                Ok(0) | Err(_) => return Next::Closed,
                Ok(_) => {}
            }
        }
        head.request.body = self.buf[head_end..total].to_vec();
        self.buf.drain(..total);
        Next::Request(head)
    }

    /// Answers a request that cannot be served, then closes after draining the input briefly.
    fn reject(&mut self, reject: Reject) {
        let status = reject.status();
        let body = format!(
            "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n<title>{status} {reason}</title>\n</head><body>\n<h1>{reason}</h1>\n</body></html>\n",
            reason = http::reason(status)
        );
        let resp = Response::html(status, body);
        if self
            .stream
            .write_all(&resp.to_bytes(true, false, false), &self.shared.shutdown)
            .is_err()
        {
            return;
        }
        self.stream.finish(&self.shared.shutdown);
        let _ = self.stream.tcp().shutdown(Shutdown::Write);
        let end = Instant::now() + LINGER;
        let mut sink = [0u8; 16 * 1024];
        while Instant::now() < end && !self.shared.stopping() {
            match self.stream.tcp().read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return,
            }
        }
    }

    fn send(&mut self, resp: &Response, req: &RecordedRequest, http10: bool, close: bool) -> After {
        let head_only = req.method.eq_ignore_ascii_case("HEAD");
        match self.stream.write_all(
            &resp.to_bytes(close, http10, head_only),
            &self.shared.shutdown,
        ) {
            Ok(()) if close => After::Close,
            Ok(()) => After::KeepOpen,
            Err(_) => After::Abort,
        }
    }

    /// Waits until the double stops or the client goes away, discarding anything it sends.
    fn wait_for_end(&mut self) {
        let mut sink = [0u8; 4096];
        while !self.shared.stopping() {
            match self.stream.read(&mut sink) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => {}
                Err(_) => return,
            }
        }
    }

    fn respond(&mut self, req: &RecordedRequest, http10: bool, close: bool, plan: Plan) -> After {
        let shared = self.shared;
        let fault = match plan {
            Plan::Normal => {
                let resp = shared.backend.handle(req);
                return self.send(&resp, req, http10, close);
            }
            Plan::FailThis => {
                return self.send(&api::internal_error(&req.path), req, http10, close);
            }
            Plan::Fault(f) => f,
        };
        let resp = match fault {
            Fault::None | Fault::FailFirst(_) => shared.backend.handle(req),
            Fault::Slow(d) => {
                if !shared.pause(d) {
                    return After::Abort;
                }
                shared.backend.handle(req)
            }
            Fault::Hang => {
                self.wait_for_end();
                return After::Abort;
            }
            Fault::HangAfterHeaders => {
                let head =
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n";
                if self.stream.write_all(head, &shared.shutdown).is_ok() {
                    self.wait_for_end();
                }
                return After::Abort;
            }
            Fault::SlowBody(d) => {
                let resp = shared.backend.handle(req);
                return self.send_slowly(&resp, req, http10, close, d);
            }
            Fault::Status {
                status,
                content_type,
                body,
            } => Response::new(status, &content_type, body),
            Fault::Html => Response::html(200, api::LOGIN_PAGE_HTML),
            Fault::ServerErrorHtml => Response::html(500, api::PHP_TIMEOUT_HTML),
            Fault::Huge(n) => return self.send_huge(n, req, http10, close),
            Fault::Reset => {
                set_linger_zero(self.stream.tcp());
                return After::Abort;
            }
            Fault::RedirectLoop => {
                let mut location = req.path.clone();
                if !req.query.is_empty() {
                    location.push('?');
                    location.push_str(&req.query);
                }
                Response::html(302, "").with_header("Location", &location)
            }
            Fault::RateLimited { reset_secs } => api::rate_limited(&req.path, reset_secs),
        };
        self.send(&resp, req, http10, close)
    }

    fn send_slowly(
        &mut self,
        resp: &Response,
        req: &RecordedRequest,
        http10: bool,
        close: bool,
        interval: Duration,
    ) -> After {
        let shared = self.shared;
        let head = resp.head_bytes(resp.body.len(), close, http10);
        if self.stream.write_all(&head, &shared.shutdown).is_err() {
            return After::Abort;
        }
        if !req.method.eq_ignore_ascii_case("HEAD") {
            for (i, b) in resp.body.iter().enumerate() {
                if i > 0 && !shared.pause(interval) {
                    return After::Abort;
                }
                if self.stream.write_all(&[*b], &shared.shutdown).is_err() {
                    return After::Abort;
                }
            }
        }
        if close {
            After::Close
        } else {
            After::KeepOpen
        }
    }

    fn send_huge(&mut self, n: usize, req: &RecordedRequest, http10: bool, close: bool) -> After {
        let shared = self.shared;
        let head = Response::json(200, Vec::new()).head_bytes(n, close, http10);
        if self.stream.write_all(&head, &shared.shutdown).is_err() {
            return After::Abort;
        }
        if !req.method.eq_ignore_ascii_case("HEAD") {
            const START: &[u8] = br#"{"response":{"Attribute":[{"id":"1","event_id":"1","object_id":"0","object_relation":null,"category":"Network activity","type":"ip-dst","to_ids":true,"value":""#;
            let mut chunk = vec![b'A'; CHUNK.min(n.max(1))];
            let prefix = START.len().min(chunk.len());
            chunk[..prefix].copy_from_slice(&START[..prefix]);
            let mut sent = 0;
            while sent < n {
                let len = (n - sent).min(chunk.len());
                if self
                    .stream
                    .write_all(&chunk[..len], &shared.shutdown)
                    .is_err()
                {
                    return After::Abort;
                }
                if sent == 0 {
                    chunk[..prefix].fill(b'A');
                }
                sent += len;
            }
        }
        if close {
            After::Close
        } else {
            After::KeepOpen
        }
    }
}
