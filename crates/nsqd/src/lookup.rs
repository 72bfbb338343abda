//! nsqd's side of discovery: one connection to each nsqlookupd, over which nsqd identifies
//! itself, announces its topics and channels as they come and go, and pings every 15 s.
//!
//! A single task owns every peer and sends each announcement to all of them in event order.
//! A peer connects lazily: whenever a command must go out and it is not connected (so the
//! 15 s ping doubles as the reconnect timer), and every (re)connect identifies and
//! re-registers everything nsqd holds.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::daemon::Nsqd;

const PING_INTERVAL: Duration = Duration::from_secs(15);
const IO_TIMEOUT: Duration = Duration::from_secs(1);

/// What the lookup task is told to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupEvent {
    Register {
        topic: String,
        channel: Option<String>,
    },
    Unregister {
        topic: String,
        channel: Option<String>,
    },
    /// `--lookupd-tcp-address` changed at runtime.
    PeersChanged,
}

/// The daemon's handle on the lookup task.
#[derive(Debug)]
pub struct Lookup {
    tx: mpsc::UnboundedSender<LookupEvent>,
    /// `broadcast_address:http_port` of every lookupd that answered IDENTIFY.
    http_addrs: Mutex<Vec<String>>,
}

impl Lookup {
    pub fn new() -> (Lookup, mpsc::UnboundedReceiver<LookupEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Lookup {
                tx,
                http_addrs: Mutex::new(Vec::new()),
            },
            rx,
        )
    }

    pub fn send(&self, e: LookupEvent) {
        let _ = self.tx.send(e);
    }

    pub fn http_addrs(&self) -> Vec<String> {
        self.http_addrs.lock().clone()
    }
}

/// nsqd's IDENTIFY, keys in the order NSQ sends them (alphabetical).
#[derive(Debug, Serialize)]
struct IdentifyBody<'a> {
    broadcast_address: &'a str,
    hostname: &'a str,
    http_port: i64,
    tcp_port: i64,
    topology_region: &'a str,
    topology_zone: &'a str,
    version: &'a str,
}

/// What a lookupd says about itself.
#[derive(Debug, Clone, Deserialize)]
struct PeerInfo {
    #[serde(default)]
    broadcast_address: String,
    #[serde(default)]
    http_port: i64,
    #[serde(default)]
    tcp_port: i64,
    #[serde(default)]
    version: String,
}

struct Peer {
    addr: String,
    conn: Option<TcpStream>,
    info: Option<PeerInfo>,
}

fn command(name: &str, topic: &str, channel: Option<&str>) -> Vec<u8> {
    match channel {
        Some(c) => format!("{name} {topic} {c}\n").into_bytes(),
        None => format!("{name} {topic}\n").into_bytes(),
    }
}

impl Peer {
    fn new(addr: &str) -> Peer {
        Peer {
            addr: addr.to_string(),
            conn: None,
            info: None,
        }
    }

    fn close(&mut self) {
        self.conn = None;
    }

    /// Sends one command on the open connection and reads its response.
    async fn exchange(&mut self, cmd: &[u8], max_body: i64) -> Result<Bytes, String> {
        let Some(conn) = self.conn.as_mut() else {
            return Err("not connected".to_string());
        };
        let io = async {
            tokio::time::timeout(IO_TIMEOUT, conn.write_all(cmd))
                .await
                .map_err(|_| "write timeout".to_string())?
                .map_err(|e| e.to_string())?;
            let mut len = [0u8; 4];
            tokio::time::timeout(IO_TIMEOUT, conn.read_exact(&mut len))
                .await
                .map_err(|_| "read timeout".to_string())?
                .map_err(|e| e.to_string())?;
            let size = i32::from_be_bytes(len);
            if size < 0 || size as i64 > max_body {
                return Err(format!("response too big ({size})"));
            }
            let mut data = vec![0u8; size as usize];
            tokio::time::timeout(IO_TIMEOUT, conn.read_exact(&mut data))
                .await
                .map_err(|_| "read timeout".to_string())?
                .map_err(|e| e.to_string())?;
            Ok(Bytes::from(data))
        };
        let res = io.await;
        if res.is_err() {
            self.close();
        }
        res
    }

    /// Sends a command, connecting (and identifying, and re-registering) first if needed.
    async fn command(&mut self, nsqd: &Nsqd, cmd: &[u8]) -> Result<Bytes, String> {
        if self.conn.is_none() {
            self.connect(nsqd).await?;
        }
        self.exchange(cmd, nsqd.opts.max_body_size).await
    }

    async fn connect(&mut self, nsqd: &Nsqd) -> Result<(), String> {
        log::info!("LOOKUP connecting to {}", self.addr);
        let addr =
            nsq_daemon::process::resolve_listen_addr(&self.addr).map_err(|e| e.to_string())?;
        let mut stream = tokio::time::timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .map_err(|_| "dial timeout".to_string())?
            .map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        tokio::time::timeout(IO_TIMEOUT, stream.write_all(b"  V1"))
            .await
            .map_err(|_| "write timeout".to_string())?
            .map_err(|e| e.to_string())?;
        self.conn = Some(stream);
        if let Err(e) = self.identify_and_register(nsqd).await {
            log::error!("LOOKUPD({}): {e}", self.addr);
            self.close();
            return Err(e);
        }
        Ok(())
    }

    async fn identify_and_register(&mut self, nsqd: &Nsqd) -> Result<(), String> {
        let o = &nsqd.opts;
        let body = serde_json::to_vec(&IdentifyBody {
            broadcast_address: &o.broadcast_address,
            hostname: &nsqd.hostname,
            http_port: o.broadcast_http_port,
            tcp_port: o.broadcast_tcp_port,
            topology_region: &o.topology_region,
            topology_zone: &o.topology_zone,
            version: nsq_daemon::VERSION,
        })
        .map_err(|e| e.to_string())?;
        let mut cmd = b"IDENTIFY\n".to_vec();
        cmd.put_u32(body.len() as u32);
        cmd.extend_from_slice(&body);
        let resp = self.exchange(&cmd, o.max_body_size).await?;
        if &resp[..] == b"E_INVALID" {
            return Err("lookupd returned E_INVALID".to_string());
        }
        let info: PeerInfo = serde_json::from_slice(&resp)
            .map_err(|_| format!("parsing response - {}", String::from_utf8_lossy(&resp)))?;
        log::info!(
            "LOOKUPD({}): peer info {{TCPPort:{} HTTPPort:{} Version:{} BroadcastAddress:{}}}",
            self.addr,
            info.tcp_port,
            info.http_port,
            info.version,
            info.broadcast_address
        );
        if info.broadcast_address.is_empty() {
            log::error!("LOOKUPD({}): no broadcast address", self.addr);
        }
        self.info = Some(info);
        for cmd in registrations(nsqd) {
            self.exchange(&cmd, o.max_body_size).await?;
        }
        Ok(())
    }
}

/// REGISTER commands for everything nsqd holds: each channel (which implies its topic), and
/// each topic that has none.
fn registrations(nsqd: &Nsqd) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for t in nsqd.topics() {
        let channels = t.channels();
        if channels.is_empty() {
            out.push(command("REGISTER", &t.name, None));
        }
        for c in channels {
            out.push(command("REGISTER", &t.name, Some(&c.name)));
        }
    }
    out
}

fn publish_http_addrs(nsqd: &Nsqd, peers: &[Peer]) {
    let addrs = peers
        .iter()
        .filter_map(|p| p.info.as_ref())
        .filter(|i| !i.broadcast_address.is_empty() && i.http_port != 0)
        .map(|i| format!("{}:{}", i.broadcast_address, i.http_port))
        .collect();
    *nsqd.lookup.http_addrs.lock() = addrs;
}

/// Sends `cmd` to every peer in order; failures are logged and the peer retried later.
async fn broadcast(nsqd: &Nsqd, peers: &mut [Peer], cmd: &[u8]) {
    for p in peers.iter_mut() {
        if let Err(e) = p.command(nsqd, cmd).await {
            log::error!(
                "LOOKUPD({}): {} - {e}",
                p.addr,
                String::from_utf8_lossy(cmd).trim_end()
            );
        }
    }
    publish_http_addrs(nsqd, peers);
}

pub async fn lookup_loop(nsqd: Arc<Nsqd>, mut rx: mpsc::UnboundedReceiver<LookupEvent>) {
    let mut peers: Vec<Peer> = Vec::new();
    reconcile(&nsqd, &mut peers).await;
    let mut ping =
        tokio::time::interval_at(tokio::time::Instant::now() + PING_INTERVAL, PING_INTERVAL);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = nsqd.shutdown.notified() => break,
            _ = ping.tick() => {
                broadcast(&nsqd, &mut peers, b"PING\n").await;
            }
            ev = rx.recv() => {
                let Some(ev) = ev else { break };
                match ev {
                    LookupEvent::Register { topic, channel } => {
                        log::info!("LOOKUP: REGISTER {topic} {}", channel.as_deref().unwrap_or(""));
                        broadcast(&nsqd, &mut peers, &command("REGISTER", &topic, channel.as_deref())).await;
                    }
                    LookupEvent::Unregister { topic, channel } => {
                        log::info!("LOOKUP: UNREGISTER {topic} {}", channel.as_deref().unwrap_or(""));
                        broadcast(&nsqd, &mut peers, &command("UNREGISTER", &topic, channel.as_deref())).await;
                    }
                    LookupEvent::PeersChanged => reconcile(&nsqd, &mut peers).await,
                }
            }
        }
        if nsqd.is_exiting() {
            break;
        }
    }
    // Dropping the connections tells every lookupd this node is gone.
    peers.clear();
}

/// Brings the peer list in line with the configured addresses: drops removed ones, connects
/// new ones at once.
async fn reconcile(nsqd: &Nsqd, peers: &mut Vec<Peer>) {
    let wanted = nsqd.runtime.lock().lookupd_tcp_addresses.clone();
    peers.retain(|p| {
        let keep = wanted.contains(&p.addr);
        if !keep {
            log::info!("LOOKUP removing peer {}", p.addr);
        }
        keep
    });
    let mut seen: BTreeMap<String, ()> = peers.iter().map(|p| (p.addr.clone(), ())).collect();
    for addr in wanted {
        if seen.insert(addr.clone(), ()).is_some() {
            continue;
        }
        log::info!("LOOKUP(new peer): {addr}");
        let mut p = Peer::new(&addr);
        if let Err(e) = p.connect(nsqd).await {
            log::error!("LOOKUPD({addr}): connect failed - {e}");
        }
        peers.push(p);
    }
    publish_http_addrs(nsqd, peers);
}

/// Channels that lookupd knows for `topic` on every identified lookupd (union), for
/// pre-creating them on a new topic. Failures are logged and skipped.
pub async fn channels_from_lookupd(nsqd: &Nsqd, topic: &str) -> Vec<String> {
    #[derive(Deserialize)]
    struct Channels {
        #[serde(default)]
        channels: Vec<String>,
    }
    let addrs = nsqd.lookup.http_addrs();
    let timeouts = nsq_http::client::ClientTimeouts {
        connect: nsqd.opts.http_client_connect_timeout,
        request: nsqd.opts.http_client_request_timeout,
    };
    let path = format!("/channels?topic={}", form_urlencode(topic));
    let queries = addrs.into_iter().map(|a| {
        let path = path.clone();
        async move {
            let res = nsq_http::client::get(&a, &path, timeouts).await;
            (a, res)
        }
    });
    let mut out: Vec<String> = Vec::new();
    for (addr, res) in futures_join_all(queries).await {
        match res
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<Channels>(&b).map_err(|e| e.to_string()))
        {
            Ok(c) => {
                for name in c.channels {
                    if !out.contains(&name) {
                        out.push(name);
                    }
                }
            }
            Err(e) => log::warn!("LOOKUPD({addr}): failed to query channels of {topic} - {e}"),
        }
    }
    out
}

/// Names are limited to `[.a-zA-Z0-9_-]`, `#`: only `#` needs escaping in a query string.
fn form_urlencode(s: &str) -> String {
    s.replace('#', "%23")
}

/// Runs the futures concurrently and returns their results in order.
async fn futures_join_all<F>(futs: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_identify_shape() {
        assert_eq!(command("REGISTER", "t", Some("c")), b"REGISTER t c\n");
        assert_eq!(command("UNREGISTER", "t", None), b"UNREGISTER t\n");
        let body = serde_json::to_string(&IdentifyBody {
            broadcast_address: "h",
            hostname: "h",
            http_port: 2,
            tcp_port: 1,
            topology_region: "",
            topology_zone: "",
            version: "1.3.0",
        })
        .unwrap();
        assert_eq!(
            body,
            r#"{"broadcast_address":"h","hostname":"h","http_port":2,"tcp_port":1,"topology_region":"","topology_zone":"","version":"1.3.0"}"#
        );
        assert_eq!(form_urlencode("t#ephemeral"), "t%23ephemeral");
    }
}
