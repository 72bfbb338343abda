//! `fake_cluster`: many nsqd HTTP servers and one nsqlookupd HTTP server in one process, all
//! answering with pre-rendered JSON in the shapes of NSQ 1.3.0, so nsqadmin can be measured
//! against a cluster of any size on one machine without the daemons' own cost.
//!
//! Every fake nsqd has the same topics (`t0`…), channels (`c0`…) and consumers with numbers
//! that differ per node, topic, channel and client (deterministically), so nsqadmin's sums and
//! merges do real work. The fake nsqlookupd reports every node as a producer of every topic.
//! Only the read endpoints nsqadmin uses exist: nsqd's `/ping`, `/info` and
//! `/stats?format=json` (with its `topic`, `channel`, `include_clients` and `include_mem`
//! filters); nsqlookupd's `/ping`, `/info`, `/topics`, `/channels`, `/lookup` and `/nodes`.

pub mod content;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use nsq_flags::{Flag, FlagSet, Values};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::{cli, report};
use content::{Lookupd, Node, NodeAddr, Shape, StatsQuery};

/// The tool's flags.
pub fn flags(app: &str) -> FlagSet {
    FlagSet::new(app)
        .flag(Flag::int("nodes", 10, "number of fake nsqd HTTP servers"))
        .flag(Flag::int("topics", 1000, "topics on every node"))
        .flag(Flag::int("channels", 5, "channels in every topic"))
        .flag(Flag::int(
            "clients",
            1,
            "consumer connections in every channel",
        ))
        .flag(Flag::int(
            "producers",
            2,
            "publishing connections per node (each publishes to an equal share of the topics)",
        ))
        .flag(Flag::int(
            "threads",
            1,
            "runtime threads serving all the fake servers (they only copy pre-rendered bytes)",
        ))
}

/// What the flags ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterOpts {
    pub shape: Shape,
    pub threads: usize,
}

pub fn opts(v: &Values) -> Result<ClusterOpts> {
    Ok(ClusterOpts {
        shape: Shape {
            nodes: cli::at_least(v, "nodes", 1)?,
            topics: cli::at_least(v, "topics", 0)?,
            channels: cli::at_least(v, "channels", 0)?,
            clients: cli::at_least(v, "clients", 0)?,
            producers: cli::at_least(v, "producers", 0)?,
        },
        threads: cli::at_least(v, "threads", 1)?,
    })
}

/// What one listener serves.
enum Role {
    Nsqd(Node),
    Lookupd(Lookupd),
}

/// A running fake cluster. Dropping it stops accepting connections.
pub struct Cluster {
    /// The fake nsqlookupd's HTTP address.
    pub lookupd: SocketAddr,
    /// The fake nsqds, in index order; `http_address()` of each is its HTTP listener.
    pub nodes: Vec<NodeAddr>,
    /// Accept loops, aborted on drop.
    _accepting: JoinSet<()>,
    /// The TCP ports the nodes report, held so no two nodes (and no other program) share one;
    /// nothing is ever accepted on them.
    _tcp_ports: Vec<std::net::TcpListener>,
}

impl Cluster {
    /// Binds every listener on 127.0.0.1:0, renders every node's content and starts serving.
    pub async fn start(shape: Shape) -> Result<Cluster> {
        // Nodes that started about a week ago, an hour apart, so clients' `connect_ts` (after
        // their node's start) are in the past.
        let week_ago = chrono::Utc::now().timestamp() - 7 * 86_400;
        let mut listeners = Vec::with_capacity(shape.nodes);
        let mut addrs = Vec::with_capacity(shape.nodes);
        let mut tcp_ports = Vec::with_capacity(shape.nodes);
        for index in 0..shape.nodes {
            let http = TcpListener::bind("127.0.0.1:0")
                .await
                .context("cannot bind a fake nsqd's HTTP listener")?;
            let tcp = std::net::TcpListener::bind("127.0.0.1:0")
                .context("cannot reserve a fake nsqd's TCP port")?;
            addrs.push(NodeAddr::new(
                index,
                http.local_addr()?.port(),
                tcp.local_addr()?.port(),
            ));
            listeners.push(http);
            tcp_ports.push(tcp);
        }
        let lookupd_listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot bind the fake nsqlookupd's HTTP listener")?;
        let lookupd = lookupd_listener.local_addr()?;

        // Rendering is CPU work that grows with the cluster; keep it off the runtime's threads.
        let node_addrs = addrs.clone();
        let (nodes, lookupd_content) = tokio::task::spawn_blocking(move || {
            let nodes: Vec<Node> = node_addrs
                .iter()
                .map(|a| Node::new(&shape, a.clone(), week_ago - 3600 * a.index as i64))
                .collect();
            (nodes, Lookupd::new(&shape, &node_addrs))
        })
        .await
        .context("rendering the cluster's content failed")?;

        let mut accepting = JoinSet::new();
        for (listener, node) in listeners.into_iter().zip(nodes) {
            accepting.spawn(serve(listener, Arc::new(Role::Nsqd(node))));
        }
        accepting.spawn(serve(
            lookupd_listener,
            Arc::new(Role::Lookupd(lookupd_content)),
        ));
        Ok(Cluster {
            lookupd,
            nodes: addrs,
            _accepting: accepting,
            _tcp_ports: tcp_ports,
        })
    }

    /// The lines the binary prints once everything listens, `ready` last.
    pub fn announcement(&self) -> String {
        let mut out = format!("lookupd-http {}\n", self.lookupd);
        for n in &self.nodes {
            out.push_str(&format!("nsqd-http {}\n", n.http_address()));
        }
        out.push_str("ready");
        out
    }
}

/// The binary: start the cluster, print its addresses, serve until SIGINT or SIGTERM.
pub fn run(tool: &str, o: ClusterOpts) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.threads)
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let cluster = Cluster::start(o.shape).await?;
        println!("{}", cluster.announcement());
        report::log(
            tool,
            &format!(
                "serving {} nsqd with {} topics x {} channels x {} clients each",
                o.shape.nodes, o.shape.topics, o.shape.channels, o.shape.clients
            ),
        );
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        report::log(tool, "exiting");
        drop(cluster);
        Ok(())
    })
}

async fn serve(listener: TcpListener, role: Arc<Role>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, most likely: wait rather than spin.
                report::log("fake_cluster", &format!("accept failed: {e}"));
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let role = Arc::clone(&role);
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let answer = respond(&role, &req);
                async move { Ok::<_, Infallible>(answer) }
            });
            // Title-cased header names, as Go writes them. A connection that breaks has
            // nothing to report: its client sees the error.
            let _ = http1::Builder::new()
                .title_case_headers(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The first value of each parameter, as Go's `url.Values.Get` returns it.
fn param(query: &str, name: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// nsqd's `include_clients`/`include_mem` parsing: `true`/`1`/`false`/`0`, anything else
/// (or nothing) means true.
fn bool_param(query: &str, name: &str) -> bool {
    !matches!(param(query, name).as_deref(), Some("false" | "0"))
}

fn respond(role: &Role, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let known = match role {
        Role::Nsqd(_) => matches!(path, "/ping" | "/info" | "/stats"),
        Role::Lookupd(_) => matches!(
            path,
            "/ping" | "/info" | "/topics" | "/channels" | "/lookup" | "/nodes"
        ),
    };
    if !known {
        return json(StatusCode::NOT_FOUND, message("NOT_FOUND"));
    }
    if req.method() != Method::GET {
        return json(
            StatusCode::METHOD_NOT_ALLOWED,
            message("METHOD_NOT_ALLOWED"),
        );
    }
    match (role, path) {
        (_, "/ping") => text(StatusCode::OK, "OK"),
        (Role::Nsqd(node), "/info") => json(StatusCode::OK, node.info()),
        (Role::Nsqd(node), _) => {
            if param(query, "format").as_deref() != Some("json") {
                return json(
                    StatusCode::BAD_REQUEST,
                    message("this fake nsqd answers /stats with format=json only"),
                );
            }
            let topic = param(query, "topic").filter(|t| !t.is_empty());
            let channel = param(query, "channel").filter(|c| !c.is_empty());
            json(
                StatusCode::OK,
                node.stats(StatsQuery {
                    topic: topic.as_deref(),
                    channel: channel.as_deref(),
                    include_clients: bool_param(query, "include_clients"),
                    include_mem: bool_param(query, "include_mem"),
                }),
            )
        }
        (Role::Lookupd(_), "/info") => json(
            StatusCode::OK,
            Bytes::from(format!("{{\"version\":\"{}\"}}", content::VERSION)),
        ),
        (Role::Lookupd(l), "/topics") => json(StatusCode::OK, l.topics()),
        (Role::Lookupd(l), "/nodes") => json(StatusCode::OK, l.nodes()),
        (Role::Lookupd(l), _) => {
            let Some(topic) = param(query, "topic") else {
                return json(StatusCode::BAD_REQUEST, message("MISSING_ARG_TOPIC"));
            };
            match (path, l.has_topic(&topic)) {
                ("/channels", true) => json(StatusCode::OK, l.channels()),
                ("/channels", false) => json(
                    StatusCode::OK,
                    Bytes::from_static(content::NO_CHANNELS.as_bytes()),
                ),
                (_, true) => json(StatusCode::OK, l.lookup()),
                (_, false) => json(StatusCode::NOT_FOUND, message("TOPIC_NOT_FOUND")),
            }
        }
    }
}

/// `{"message":"…"}`, NSQ's error body.
fn message(text: &str) -> Bytes {
    Bytes::from(serde_json::json!({ "message": text }).to_string())
}

fn json(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    h.insert(
        "X-NSQ-Content-Type",
        HeaderValue::from_static("nsq; version=1.0"),
    );
    r
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
