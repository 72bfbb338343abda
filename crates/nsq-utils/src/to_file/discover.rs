//! The process around the per-topic loops: which topics to archive (given, or discovered through
//! nsqlookupd and filtered by `--topic-pattern`), one consumer and loop per topic, signals passed
//! on to every loop, and fatal errors turned into the exit status.
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use nsq_client::{Config, Consumer, Message};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{interval_at, Instant, Interval, MissedTickBehavior};

use super::naming::{filename_template, NamingOptions};
use super::output::{Clock, Compression, FatalError, FileSettings, OutputFile};
use super::router::{self, Control, Delivery, RouterSettings, Source};
use super::strftime::Stamp;
use super::{positive_duration, sync_interval, Options};

impl Delivery for Message {
    fn body(&self) -> &[u8] {
        &self.body
    }

    fn nsqd_address(&self) -> &str {
        &self.nsqd_address
    }

    fn finish(&self) {
        Message::finish(self);
    }
}

/// A consumer as the topic loop's message source. (The consumer itself finishes messages past
/// `max_attempts` unwritten, as go-nsq does.)
struct ConsumerSource {
    consumer: Arc<Consumer>,
}

impl Source for ConsumerSource {
    type Msg = Message;

    async fn recv(&self) -> Option<Message> {
        self.consumer.recv().await
    }

    fn stop(&self) {
        self.consumer.stop();
    }

    fn connections(&self) -> usize {
        self.consumer.stats().connections
    }
}

/// Why a topic could not be started.
struct StartError {
    /// Worth trying again later (the nsqd could not be reached); a bad file name is not.
    retry: bool,
    reason: String,
}

struct Discoverer {
    opts: Arc<Options>,
    files: Arc<FileSettings>,
    cfg: Config,
    hostname: String,
    pattern: Option<Result<regex::Regex, regex::Error>>,
    loops: HashMap<String, mpsc::UnboundedSender<Control>>,
    tasks: JoinSet<Result<(), FatalError>>,
    /// Given topics whose nsqd could not be reached yet.
    retry: Vec<String>,
    clock: Clock,
}

impl Discoverer {
    fn new(opts: Arc<Options>) -> Discoverer {
        let mut cfg = Config::new();
        for opt in &opts.consumer_opts {
            // NSQ ignores options it cannot apply.
            let _ = cfg.set_flag(opt);
        }
        cfg.user_agent = crate::common::user_agent(super::APP);
        cfg.max_in_flight = usize::try_from(opts.max_in_flight).unwrap_or(0);
        let compression = if opts.gzip {
            Compression::Gzip(u32::try_from(opts.gzip_level).unwrap_or(6))
        } else if opts.zstd {
            Compression::Zstd(i32::try_from(opts.zstd_level).unwrap_or(3))
        } else {
            Compression::None
        };
        let files = Arc::new(FileSettings {
            channel: opts.channel.clone(),
            output_dir: opts.output_dir.clone(),
            work_dir: opts.work_dir.clone(),
            datetime_format: opts.datetime_format.clone(),
            compression,
            skip_empty_files: opts.skip_empty_files,
            rotate_size: opts.rotate_size,
            rotate_interval: positive_duration(opts.rotate_interval),
        });
        let pattern =
            (!opts.topic_pattern.is_empty()).then(|| regex::Regex::new(&opts.topic_pattern));
        Discoverer {
            opts,
            files,
            cfg,
            hostname: nsq_daemon::hostname(),
            pattern,
            loops: HashMap::new(),
            tasks: JoinSet::new(),
            retry: Vec::new(),
            clock: Arc::new(Stamp::now),
        }
    }

    fn is_topic_allowed(&self, topic: &str) -> bool {
        match &self.pattern {
            None => true,
            Some(Ok(re)) => re.is_match(topic),
            // NSQ's pattern check fails for every topic when the pattern does not compile.
            Some(Err(_)) => false,
        }
    }

    async fn update_topics(&mut self, topics: &[String]) {
        for topic in topics {
            if self.loops.contains_key(topic) {
                continue;
            }
            if !self.is_topic_allowed(topic) {
                log::warn!(
                    "skipping topic {topic} (doesn't match pattern {})",
                    self.opts.topic_pattern
                );
                continue;
            }
            match self.start_topic(topic).await {
                Ok(()) => self.retry.retain(|t| t != topic),
                Err(e) => {
                    log::error!("couldn't create logger for new topic {topic}: {}", e.reason);
                    if e.retry && !self.opts.topics.is_empty() && !self.retry.contains(topic) {
                        self.retry.push(topic.clone());
                    }
                }
            }
        }
    }

    async fn start_topic(&mut self, topic: &str) -> Result<(), StartError> {
        let fatal = |reason: String| StartError {
            retry: false,
            reason,
        };
        let naming = NamingOptions {
            filename_format: &self.opts.filename_format,
            host_identifier: &self.opts.host_identifier,
            compression: self.files.compression,
            needs_rev: self.opts.rotate_size > 0
                || self.opts.rotate_interval > 0
                || self.opts.work_dir != self.opts.output_dir,
            hostname: &self.hostname,
            pid: std::process::id(),
        };
        let template = filename_template(&naming, topic).map_err(|e| fatal(e.to_string()))?;
        if self.opts.max_in_flight < 0 {
            return Err(fatal(format!(
                "invalid MaxInFlight ! {} < 0",
                self.opts.max_in_flight
            )));
        }
        let consumer = Consumer::new(topic, &self.opts.channel, self.cfg.clone())
            .map_err(|e| fatal(e.to_string()))?;
        let consumer = Arc::new(consumer);
        let connected = async {
            consumer
                .connect_to_nsqds(&self.opts.nsqd_tcp_addresses)
                .await?;
            consumer
                .connect_to_nsqlookupds(&self.opts.lookupd_http_addresses)
                .await
        };
        if let Err(e) = connected.await {
            consumer.stop();
            return Err(StartError {
                retry: true,
                reason: e.to_string(),
            });
        }

        let (tx, rx) = mpsc::unbounded_channel();
        self.loops.insert(topic.to_string(), tx);
        let source = ConsumerSource { consumer };
        let mut file = OutputFile::new(self.files.clone(), topic, template, self.clock.clone());
        let settings = RouterSettings {
            sync_interval: sync_interval(&self.opts),
            max_in_flight: usize::try_from(self.opts.max_in_flight).unwrap_or(0),
            skip_empty_files: self.opts.skip_empty_files,
        };
        self.tasks
            .spawn(async move { router::run(&source, &mut file, settings, rx).await });
        Ok(())
    }

    fn broadcast(&self, ctl: Control) {
        for tx in self.loops.values() {
            let _ = tx.send(ctl);
        }
    }
}

/// `GET /topics` on every lookupd: the union, sorted. Any failure fails the refresh, as in NSQ.
async fn lookupd_topics(opts: &Options) -> Result<Vec<String>, String> {
    #[derive(serde::Deserialize)]
    struct Topics {
        #[serde(default)]
        topics: Vec<String>,
    }
    let timeouts = nsq_http::client::ClientTimeouts {
        connect: Duration::from_nanos(u64::try_from(opts.http_client_connect_timeout).unwrap_or(0)),
        request: Duration::from_nanos(u64::try_from(opts.http_client_request_timeout).unwrap_or(0)),
    };
    let mut topics = Vec::new();
    let mut errors = Vec::new();
    for addr in &opts.lookupd_http_addresses {
        let host = addr
            .strip_prefix("http://")
            .unwrap_or(addr)
            .trim_end_matches('/');
        let got = nsq_http::client::get(host, "/topics", timeouts)
            .await
            .map_err(|e| format!("Get \"http://{host}/topics\": {e}"))
            .and_then(|body| serde_json::from_slice::<Topics>(&body).map_err(|e| e.to_string()));
        match got {
            Ok(t) => topics.extend(t.topics),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() && errors.len() == opts.lookupd_http_addresses.len() {
        return Err(format!(
            "failed to query any nsqlookupd: {}",
            errors.join("\n")
        ));
    }
    if !errors.is_empty() {
        return Err(errors.join("\n"));
    }
    topics.sort();
    topics.dedup();
    Ok(topics)
}

async fn tick(timer: &mut Option<Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn every(period: Duration) -> Interval {
    let mut t = interval_at(Instant::now() + period, period);
    t.set_missed_tick_behavior(MissedTickBehavior::Delay);
    t
}

/// Runs until SIGINT/SIGTERM and every topic's loop has finished; `Err` carries a fatal error's
/// text for the caller to log before exiting 1.
pub async fn run(opts: Arc<Options>) -> Result<(), String> {
    // Registered first so that an early signal is handled rather than killing the process.
    let mut hup = signal(SignalKind::hangup()).map_err(|e| format!("signal: {e}"))?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| format!("signal: {e}"))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| format!("signal: {e}"))?;

    let mut d = Discoverer::new(opts.clone());
    let mut refresh = match positive_duration(opts.topic_refresh) {
        Some(p) if opts.topics.is_empty() => Some(every(p)),
        _ => None,
    };
    let mut retry = every(d.cfg.lookupd_poll_interval.max(Duration::from_millis(100)));
    d.update_topics(&opts.topics).await;

    loop {
        tokio::select! {
            _ = tick(&mut refresh) => match lookupd_topics(&opts).await {
                Ok(topics) => d.update_topics(&topics).await,
                Err(e) => log::error!("could not retrieve topic list: {e}"),
            },
            _ = retry.tick(), if !d.retry.is_empty() => {
                let again = d.retry.clone();
                d.update_topics(&again).await;
            }
            _ = hup.recv() => d.broadcast(Control::Reopen),
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(done) = d.tasks.join_next(), if !d.tasks.is_empty() => {
                if let Ok(Err(e)) = done {
                    return Err(e.to_string());
                }
            }
        }
    }
    d.broadcast(Control::Stop);
    while let Some(done) = d.tasks.join_next().await {
        if let Ok(Err(e)) = done {
            return Err(e.to_string());
        }
    }
    Ok(())
}
