//! `nsq_to_nsq`: consumes topics from one set of nsqd and publishes each message to
//! destination nsqd (round-robin or host pool), optionally filtering and trimming JSON
//! messages. A message is FINed only once a destination nsqd acknowledged the publish, and
//! requeued when the publish failed.
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use nsq_client::{Config, Consumer, Producer};
use nsq_flags::{Flag, FlagSet, Parsed};

use crate::to_http::golog;
use crate::to_http::hostpool::HostPool;
use crate::to_http::metrics::TimerMetrics;
use crate::to_http::{
    apply_config_opts, check_consumer, connect_error_text, program_name, Signals,
};

mod json;

use json::{JsonFilter, Verdict};

const APP: &str = "nsq_to_nsq";

/// How each message picks its destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `round-robin`, and any value the Go tool does not know.
    RoundRobin,
    HostPool,
    EpsilonGreedy,
}

impl Mode {
    fn parse(s: &str) -> Mode {
        match s {
            "hostpool" => Mode::HostPool,
            "epsilon-greedy" => Mode::EpsilonGreedy,
            _ => Mode::RoundRobin,
        }
    }
}

/// Everything the command line said, checked.
#[derive(Debug, Clone)]
pub struct Options {
    pub topics: Vec<String>,
    pub channel: String,
    pub destination_topic: String,
    pub max_in_flight: i64,
    pub status_every: i64,
    pub mode: Mode,
    pub nsqd_tcp_addresses: Vec<String>,
    pub lookupd_http_addresses: Vec<String>,
    pub destination_addresses: Vec<String>,
    pub require_json_field: String,
    pub require_json_value: String,
    pub whitelist_json_fields: Vec<String>,
    pub consumer_config: Config,
    pub producer_config: Config,
}

/// What the command line asked for.
pub type Outcome = crate::to_http::Outcome<Options>;

fn flag_set(app: &str) -> FlagSet {
    FlagSet::new(app)
        .flag(Flag::bool("version", false, "print version string"))
        .flag(Flag::string("channel", "nsq_to_nsq", "nsq channel"))
        .flag(Flag::string(
            "destination-topic",
            "",
            "use this destination topic for all consumed topics (default is consumed topic name)",
        ))
        .flag(Flag::int(
            "max-in-flight",
            200,
            "max number of messages to allow in flight",
        ))
        .flag(Flag::int(
            "status-every",
            250,
            "the # of requests between logging status (per destination), 0 disables",
        ))
        .flag(Flag::string(
            "mode",
            "hostpool",
            "the upstream request mode options: round-robin, hostpool (default), epsilon-greedy",
        ))
        .flag(Flag::str_list(
            "nsqd-tcp-address",
            "nsqd TCP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "destination-nsqd-tcp-address",
            "destination nsqd TCP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "lookupd-http-address",
            "lookupd HTTP address (may be given multiple times)",
        ))
        .flag(Flag::str_list("topic", "nsq topic (may be given multiple times)"))
        .flag(Flag::str_list(
            "whitelist-json-field",
            "for JSON messages: pass this field (may be given multiple times)",
        ))
        .flag(Flag::string(
            "require-json-field",
            "",
            "for JSON messages: only pass messages that contain this field",
        ))
        .flag(Flag::string(
            "require-json-value",
            "",
            "for JSON messages: only pass messages in which the required field has this value",
        ))
        .flag(Flag::str_list(
            "consumer-opt",
            "option to passthrough to nsq.Consumer (may be given multiple times, see http://godoc.org/github.com/nsqio/go-nsq#Config)",
        ))
        .flag(Flag::str_list(
            "producer-opt",
            "option to passthrough to nsq.Producer (may be given multiple times, see http://godoc.org/github.com/nsqio/go-nsq#Config)",
        ))
}

/// The usage text, for printing after a flag error.
pub fn usage() -> String {
    flag_set(&program_name(APP)).usage()
}

/// Parses `nsq_to_nsq`'s arguments (without the program name) and makes the Go tool's checks,
/// in its order.
pub fn parse(args: Vec<String>) -> Result<Outcome, crate::to_http::OptionsError> {
    use crate::to_http::OptionsError;
    let fs = flag_set(&program_name(APP));
    let cl = match fs.parse(args) {
        Ok(Parsed::Help(text)) => return Ok(Outcome::Help(text)),
        Ok(Parsed::Args(cl)) => cl,
        Err(e) => return Err(OptionsError::Flag(e.to_string())),
    };
    let v = cl.values();
    let mut consumer_config = Config::new();
    let mut producer_config = Config::new();
    apply_config_opts(
        &mut consumer_config,
        "consumer-opt",
        v.str_list("consumer-opt"),
    )
    .map_err(OptionsError::Flag)?;
    apply_config_opts(
        &mut producer_config,
        "producer-opt",
        v.str_list("producer-opt"),
    )
    .map_err(OptionsError::Flag)?;
    if v.bool("version") {
        return Ok(Outcome::Version);
    }
    let fatal = |m: &str| Err(OptionsError::Fatal(m.to_string()));
    let topics = v.str_list("topic");
    let channel = v.string("channel");
    if topics.is_empty() || channel.is_empty() {
        return fatal("--topic and --channel are required");
    }
    let valid_topic = |t: &str| nsq_protocol::names::is_valid_topic_name(t.as_bytes());
    if !topics.iter().all(|t| valid_topic(t)) {
        return fatal("--topic is invalid");
    }
    let destination_topic = v.string("destination-topic");
    if !destination_topic.is_empty() && !valid_topic(destination_topic) {
        return fatal("--destination-topic is invalid");
    }
    if !nsq_protocol::names::is_valid_channel_name(channel.as_bytes()) {
        return fatal("--channel is invalid");
    }
    let nsqd = v.str_list("nsqd-tcp-address");
    let lookupd = v.str_list("lookupd-http-address");
    if nsqd.is_empty() && lookupd.is_empty() {
        return fatal("--nsqd-tcp-address or --lookupd-http-address required");
    }
    if !nsqd.is_empty() && !lookupd.is_empty() {
        return fatal("use --nsqd-tcp-address or --lookupd-http-address not both");
    }
    let destinations = v.str_list("destination-nsqd-tcp-address");
    if destinations.is_empty() {
        return fatal("--destination-nsqd-tcp-address required");
    }
    Ok(Outcome::Run(Box::new(Options {
        topics: topics.to_vec(),
        channel: channel.to_string(),
        destination_topic: destination_topic.to_string(),
        max_in_flight: v.int("max-in-flight"),
        status_every: v.int("status-every"),
        mode: Mode::parse(v.string("mode")),
        nsqd_tcp_addresses: nsqd.to_vec(),
        lookupd_http_addresses: lookupd.to_vec(),
        destination_addresses: destinations.to_vec(),
        require_json_field: v.string("require-json-field").to_string(),
        require_json_value: v.string("require-json-value").to_string(),
        whitelist_json_fields: v.str_list("whitelist-json-field").to_vec(),
        consumer_config,
        producer_config,
    })))
}

/// Why a message was requeued.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The required field was missing while a value was required.
    #[error("backoff")]
    Backoff,
    #[error(transparent)]
    Publish(#[from] nsq_client::Error),
}

/// Publishes messages to the destinations in the chosen mode and keeps the timing stats.
pub struct Relay {
    addresses: Vec<String>,
    producers: HashMap<String, Producer>,
    mode: Mode,
    pool: HostPool,
    counter: AtomicU64,
    filter: JsonFilter,
    per_address: HashMap<String, TimerMetrics>,
    aggregate: TimerMetrics,
}

impl Relay {
    /// One producer per destination address; logs the small-`--status-every` warnings.
    pub fn new(opts: &Options, producers: HashMap<String, Producer>) -> Relay {
        let mut per_address = HashMap::new();
        if let [only] = opts.destination_addresses.as_slice() {
            per_address.insert(only.clone(), TimerMetrics::new(0, ""));
        } else {
            for a in &opts.destination_addresses {
                per_address.insert(
                    a.clone(),
                    TimerMetrics::new(opts.status_every, &format!("[{a}]:")),
                );
            }
        }
        Relay {
            addresses: opts.destination_addresses.clone(),
            producers,
            mode: opts.mode,
            pool: if opts.mode == Mode::EpsilonGreedy {
                HostPool::epsilon_greedy(&opts.destination_addresses)
            } else {
                HostPool::new(&opts.destination_addresses)
            },
            counter: AtomicU64::new(0),
            filter: JsonFilter::new(
                &opts.require_json_field,
                &opts.require_json_value,
                &opts.whitelist_json_fields,
            ),
            per_address,
            aggregate: TimerMetrics::new(opts.status_every, "[aggregate]:"),
        }
    }

    /// Filters one message and publishes it to `topic`: `Ok` once a destination acknowledged
    /// it (or the filters dropped it), `Err` when it should be requeued.
    pub async fn handle(&self, body: &Bytes, topic: &str) -> Result<(), RelayError> {
        let body = match self.filter.apply(body) {
            Verdict::Pass(b) => Bytes::from(b),
            Verdict::Drop => return Ok(()),
            Verdict::Backoff => return Err(RelayError::Backoff),
            Verdict::NotJson => {
                golog::print(format!(
                    "ERROR: Unable to decode json: {}",
                    String::from_utf8_lossy(body)
                ));
                return Ok(());
            }
        };
        let start = Instant::now();
        let (addr, result) = match self.mode {
            Mode::RoundRobin => {
                let n = self.addresses.len().max(1) as u64;
                // The counter moves before it is read, so the first message goes to the
                // second destination, as in the Go tool.
                let c = self.counter.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
                let addr = self
                    .addresses
                    .get(usize::try_from(c % n).unwrap_or(0))
                    .cloned()
                    .unwrap_or_default();
                let result = self.publish(&addr, topic, body).await;
                (addr, result)
            }
            Mode::HostPool | Mode::EpsilonGreedy => {
                let Some(choice) = self.pool.get() else {
                    return Ok(());
                };
                let addr = choice.host().to_string();
                let result = self.publish(&addr, topic, body).await;
                choice.mark(result.is_ok());
                (addr, result)
            }
        };
        // Failures count in the timings too, as in the Go tool.
        if let Some(m) = self.per_address.get(&addr) {
            m.status(start);
        }
        self.aggregate.status(start);
        result.map_err(RelayError::from)
    }

    async fn publish(&self, addr: &str, topic: &str, body: Bytes) -> Result<(), nsq_client::Error> {
        match self.producers.get(addr) {
            Some(p) => p.publish(topic, body).await,
            None => Err(nsq_client::Error::Stopped),
        }
    }

    /// Closes the destination connections once their publishes are answered.
    pub async fn stop(&self) {
        for p in self.producers.values() {
            p.stop().await;
        }
    }
}

async fn run(opts: Options) -> ExitCode {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => golog::exit_fatal(e),
    };
    let user_agent = crate::common::user_agent(APP);
    let mut cconfig = opts.consumer_config.clone();
    cconfig.user_agent = user_agent.clone();
    let mut pconfig = opts.producer_config.clone();
    pconfig.user_agent = user_agent;

    let mut producers = HashMap::new();
    for addr in &opts.destination_addresses {
        match Producer::new(addr, pconfig.clone()) {
            Ok(p) => {
                producers.insert(addr.clone(), p);
            }
            Err(e) => golog::exit_fatal(format!("failed creating producer {e}")),
        }
    }
    let relay = Arc::new(Relay::new(&opts, producers));
    // Publishes are awaited inside the handlers, so as many handlers as messages may be in
    // flight keep the destinations as busy as the Go tool's asynchronous publishes do.
    let handlers = usize::try_from(opts.max_in_flight)
        .unwrap_or(0)
        .max(opts.destination_addresses.len());

    let mut consumers = Vec::new();
    for topic in &opts.topics {
        if let Err(e) = check_consumer(opts.max_in_flight, topic, &opts.channel) {
            golog::exit_fatal(e);
        }
        let mut config = cconfig.clone();
        config.max_in_flight = usize::try_from(opts.max_in_flight).unwrap_or(0);
        let consumer = match Consumer::new(topic, &opts.channel, config) {
            Ok(c) => Arc::new(c),
            Err(e) => golog::exit_fatal(e),
        };
        let destination: Arc<str> = if opts.destination_topic.is_empty() {
            Arc::from(topic.as_str())
        } else {
            Arc::from(opts.destination_topic.as_str())
        };
        let relay = Arc::clone(&relay);
        consumer.add_concurrent_handlers(handlers, move |msg| {
            let relay = Arc::clone(&relay);
            let destination = Arc::clone(&destination);
            async move {
                relay
                    .handle(&msg.body, &destination)
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)
            }
        });
        consumers.push(consumer);
    }
    for c in &consumers {
        if let Err(e) = c.connect_to_nsqds(&opts.nsqd_tcp_addresses).await {
            golog::exit_fatal(connect_error_text(&e));
        }
    }
    for c in &consumers {
        if let Err(e) = c.connect_to_nsqlookupds(&opts.lookupd_http_addresses).await {
            golog::exit_fatal(connect_error_text(&e));
        }
    }
    signals.recv().await;
    for c in &consumers {
        c.stop();
    }
    for c in &consumers {
        c.stopped().await;
    }
    relay.stop().await;
    ExitCode::SUCCESS
}

/// Runs `nsq_to_nsq` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    golog::install();
    crate::to_http::run_main(APP, parse(args), usage, run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::to_http::OptionsError;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn fatal_of(a: &[&str]) -> String {
        match parse(args(a)) {
            Err(OptionsError::Fatal(m)) => m,
            other => panic!("{a:?}: {other:?}"),
        }
    }

    #[test]
    fn go_checks_and_texts() {
        assert_eq!(fatal_of(&[]), "--topic and --channel are required");
        assert_eq!(
            fatal_of(&["--topic=t", "--channel="]),
            "--topic and --channel are required"
        );
        assert_eq!(
            fatal_of(&["--topic=t", "--topic=a/b"]),
            "--topic is invalid"
        );
        assert_eq!(
            fatal_of(&["--topic=t", "--destination-topic=a b"]),
            "--destination-topic is invalid"
        );
        assert_eq!(
            fatal_of(&["--topic=t", "--channel=a/b"]),
            "--channel is invalid"
        );
        assert_eq!(
            fatal_of(&["--topic=t"]),
            "--nsqd-tcp-address or --lookupd-http-address required"
        );
        assert_eq!(
            fatal_of(&[
                "--topic=t",
                "--nsqd-tcp-address=a:1",
                "--lookupd-http-address=b:2"
            ]),
            "use --nsqd-tcp-address or --lookupd-http-address not both"
        );
        assert_eq!(
            fatal_of(&["--topic=t", "--nsqd-tcp-address=a:1"]),
            "--destination-nsqd-tcp-address required"
        );
    }

    #[test]
    fn defaults_modes_and_flag_errors() {
        let o = match parse(args(&[
            "--topic=t",
            "--topic=u#ephemeral",
            "--nsqd-tcp-address=a:1",
            "--destination-nsqd-tcp-address=b:2",
            "--whitelist-json-field=x",
        ])) {
            Ok(Outcome::Run(o)) => o,
            other => panic!("{other:?}"),
        };
        assert_eq!(o.channel, "nsq_to_nsq");
        assert_eq!(o.topics, ["t", "u#ephemeral"]);
        assert_eq!((o.max_in_flight, o.status_every), (200, 250));
        assert_eq!(o.mode, Mode::HostPool);
        assert_eq!(o.whitelist_json_fields, ["x"]);
        assert_eq!(Mode::parse("round-robin"), Mode::RoundRobin);
        assert_eq!(Mode::parse("epsilon-greedy"), Mode::EpsilonGreedy);
        assert_eq!(Mode::parse("anything"), Mode::RoundRobin);
        match parse(args(&["--nope"])) {
            Err(OptionsError::Flag(l)) => assert_eq!(l, "flag provided but not defined: -nope"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(parse(args(&["--version"])), Ok(Outcome::Version)));
        assert!(usage().contains("  -whitelist-json-field value\n"));
    }
}
