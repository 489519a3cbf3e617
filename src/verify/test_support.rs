//! Real servers on 127.0.0.1 for the gates' tests: a small HTTP/1.1 server (optionally behind
//! rustls), a test PKI made with rcgen, and an authoritative DNS server over UDP and TCP. Each
//! server listens on a free port and stops when dropped.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub(crate) fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// What the test HTTP server answers.
pub(crate) struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Accept the connection but never answer.
    pub hang: bool,
}

impl Reply {
    pub fn new(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_string(),
            hang: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    pub fn hang() -> Reply {
        Reply {
            hang: true,
            ..Reply::new(200, "")
        }
    }
}

type Handler = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// An HTTP/1.1 server answering every request through `handler(path)`, plain or over TLS.
pub(crate) struct HttpServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    pub fn start(handler: impl Fn(&str) -> Reply + Send + Sync + 'static) -> HttpServer {
        Self::serve(Arc::new(handler), None)
    }

    pub fn start_tls(
        tls: Arc<rustls::ServerConfig>,
        handler: impl Fn(&str) -> Reply + Send + Sync + 'static,
    ) -> HttpServer {
        Self::serve(Arc::new(handler), Some(tls))
    }

    fn serve(handler: Handler, tls: Option<Arc<rustls::ServerConfig>>) -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let handler = handler.clone();
                        let tls = tls.clone();
                        let stopped = stopped.clone();
                        std::thread::spawn(move || connection(stream, handler, tls, stopped));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn connection(
    stream: TcpStream,
    handler: Handler,
    tls: Option<Arc<rustls::ServerConfig>>,
    stopped: Arc<AtomicBool>,
) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    match tls {
        Some(config) => {
            let conn = rustls::ServerConnection::new(config).unwrap();
            let mut tls = rustls::StreamOwned::new(conn, stream);
            exchange(&mut tls, &handler, &stopped);
        }
        None => {
            let mut stream = stream;
            exchange(&mut stream, &handler, &stopped);
        }
    }
}

fn exchange(stream: &mut (impl Read + Write), handler: &Handler, stopped: &AtomicBool) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = handler(&path);
    if reply.hang {
        // Hold the connection open without a word until the test server stops.
        for _ in 0..500 {
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        return;
    }
    let mut out = format!("HTTP/1.1 {} Test\r\n", reply.status);
    for (name, value) in &reply.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{}",
        reply.body.len(),
        reply.body
    ));
    let _ = stream.write_all(out.as_bytes());
    let _ = stream.flush();
}

/// A test CA and leaves it signs.
pub(crate) struct Pki {
    ca_params: CertificateParams,
    ca_key: KeyPair,
    pub ca_pem: String,
}

/// Validity of a test leaf, in seconds relative to now.
pub(crate) struct Validity {
    pub from: i64,
    pub until: i64,
}

impl Validity {
    pub fn days(from: i64, until: i64) -> Validity {
        Validity {
            from: from * 86_400,
            until: until * 86_400,
        }
    }
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params.distinguished_name.push(DnType::CommonName, name);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        Pki {
            ca_pem: ca_cert.pem(),
            ca_params,
            ca_key,
        }
    }

    /// Writes the CA certificate as PEM into `dir`, returning the path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.ca_pem).unwrap();
        path
    }

    /// A rustls server configuration presenting a leaf for `names`, signed by this CA.
    pub fn server(&self, names: &[&str], validity: Validity) -> Arc<rustls::ServerConfig> {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(ToString::to_string).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
        // Relative to now, without naming the `time` crate behind rcgen's dates.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let epoch = rcgen::date_time_ymd(1970, 1, 1);
        params.not_before = epoch + Duration::from_secs((now + validity.from) as u64);
        params.not_after = epoch + Duration::from_secs((now + validity.until) as u64);
        let issuer = Issuer::from_params(&self.ca_params, &self.ca_key);
        let leaf = params.signed_by(&key, &issuer).unwrap();
        let chain: Vec<CertificateDer<'static>> = vec![leaf.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        Arc::new(config)
    }
}

/// An authoritative DNS server for fixed records, on UDP and TCP of the same port.
pub(crate) struct DnsServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

pub(crate) struct Zone {
    records: HashMap<(String, RecordType), Vec<RData>>,
    /// Names whose UDP answers are truncated, so that clients must retry over TCP.
    truncated: Vec<String>,
}

impl Zone {
    pub fn new() -> Zone {
        Zone {
            records: HashMap::new(),
            truncated: Vec::new(),
        }
    }

    pub fn add(mut self, name: &str, data: RData) -> Zone {
        let key = (name.to_ascii_lowercase(), data.record_type());
        self.records.entry(key).or_default().push(data);
        self
    }

    pub fn truncate_udp(mut self, name: &str) -> Zone {
        self.truncated.push(name.to_ascii_lowercase());
        self
    }

    fn answer(&self, query: &[u8], udp: bool) -> Option<Vec<u8>> {
        let request = Message::from_vec(query).ok()?;
        let q = request.queries.first()?.clone();
        let name = q.name.to_lowercase().to_ascii();
        let name = name.trim_end_matches('.').to_string();
        let mut response = Message::new(request.metadata.id, MessageType::Response, OpCode::Query);
        response.metadata.authoritative = true;
        response.metadata.recursion_desired = request.metadata.recursion_desired;
        response.add_query(q.clone());
        let exists = self.records.keys().any(|(n, _)| *n == name);
        if !exists {
            response.metadata.response_code = ResponseCode::NXDomain;
        } else if udp && self.truncated.contains(&name) {
            response.metadata.truncation = true;
        } else if let Some(datas) = self.records.get(&(name.clone(), q.query_type)) {
            for data in datas {
                response.add_answer(Record::from_rdata(q.name.clone(), 300, data.clone()));
            }
        }
        response.to_vec().ok()
    }
}

impl DnsServer {
    pub fn start(zone: Zone) -> DnsServer {
        let zone = Arc::new(zone);
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("a free port for UDP and TCP");
        let addr = udp.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        tcp.set_nonblocking(true).unwrap();
        let udp_thread = {
            let (zone, stop) = (zone.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    if let Some(answer) = zone.answer(&buf[..n], true) {
                        let _ = udp.send_to(&answer, from);
                    }
                }
            })
        };
        let tcp_thread = {
            let (zone, stop) = (zone.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut stream, _)) = tcp.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut len = [0u8; 2];
                    if stream.read_exact(&mut len).is_err() {
                        continue;
                    }
                    let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if stream.read_exact(&mut query).is_err() {
                        continue;
                    }
                    if let Some(answer) = zone.answer(&query, false) {
                        let mut framed = (answer.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&answer);
                        let _ = stream.write_all(&framed);
                    }
                }
            })
        };
        DnsServer {
            addr,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
