//! `nsq_tail`: consumes one or more topics (a consumer per topic, on an ephemeral channel by
//! default) and prints each message body as a line on stdout, like NSQ's `nsq_tail`.
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nsq_client::{Config, Consumer, Message};
use nsq_flags::{Flag, FlagSet};
use nsq_protocol::names::{is_valid_channel_name, is_valid_topic_name};
use rand::Rng;

use crate::common::{self, Cli, Sources, LOOKUPD_HTTP_FLAG, NSQD_TCP_FLAG};

const APP: &str = "nsq_tail";

fn flag_set(program: &str) -> FlagSet {
    FlagSet::new(program)
        .flag(Flag::bool("version", false, "print version string"))
        .flag(Flag::string("channel", "", "NSQ channel"))
        .flag(Flag::int(
            "max-in-flight",
            200,
            "max number of messages to allow in flight",
        ))
        .flag(Flag::int(
            "n",
            0,
            "total messages to show (will wait if starved)",
        ))
        .flag(Flag::bool(
            "print-topic",
            false,
            "print topic name where message was received",
        ))
        .flag(Flag::str_list(
            NSQD_TCP_FLAG,
            "nsqd TCP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            LOOKUPD_HTTP_FLAG,
            "lookupd HTTP address (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "topic",
            "NSQ topic (may be given multiple times)",
        ))
        .flag(Flag::str_list(
            "consumer-opt",
            "option to passthrough to nsq.Consumer (may be given multiple times, http://godoc.org/github.com/nsqio/go-nsq#Config)",
        ))
}

/// `tail<6 digits>#ephemeral`, the channel Go picks when none is given.
pub fn random_channel() -> String {
    let n: u32 = rand::thread_rng().gen_range(0..999_999);
    format!("tail{n:06}#ephemeral")
}

/// The `max_in_flight` Go uses: never more than the messages `-n` asks for.
pub fn effective_max_in_flight(max_in_flight: i64, total: i64) -> i64 {
    if total > 0 && total < max_in_flight {
        total
    } else {
        max_in_flight
    }
}

/// One output line: `[<topic> | ]<body>\n`.
pub fn format_line(topic: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut line = Vec::with_capacity(body.len() + topic.map_or(0, |t| t.len() + 3) + 1);
    if let Some(t) = topic {
        line.extend_from_slice(t.as_bytes());
        line.extend_from_slice(b" | ");
    }
    line.extend_from_slice(body);
    line.push(b'\n');
    line
}

/// Runs `nsq_tail` with these arguments (without the program name).
pub fn main(args: Vec<String>) -> ExitCode {
    let flags = flag_set(&common::program_name(APP));
    let cl = match common::parse_flags(&flags, args) {
        Cli::Run(cl) => cl,
        Cli::Exit(code) => return code,
    };
    let v = cl.values();
    let mut config = Config::new();
    if let Err(e) =
        common::apply_config_opts(&mut config, "consumer-opt", v.str_list("consumer-opt"))
    {
        return common::usage_error(&flags, &e.to_string());
    }
    if v.bool("version") {
        println!("{}", common::version_line(APP));
        return ExitCode::SUCCESS;
    }
    let channel = match v.string("channel") {
        "" => random_channel(),
        c => c.to_string(),
    };
    let sources = match common::check_sources(
        NSQD_TCP_FLAG,
        v.str_list(NSQD_TCP_FLAG),
        LOOKUPD_HTTP_FLAG,
        v.str_list(LOOKUPD_HTTP_FLAG),
    ) {
        Ok(s) => s,
        Err(e) => return common::fatal(&e.to_string()),
    };
    let topics = v.str_list("topic").to_vec();
    if topics.is_empty() {
        return common::fatal("--topic required");
    }
    let total = v.int("n");
    let max_in_flight = effective_max_in_flight(v.int("max-in-flight"), total);
    // Set after the options, as Go does, so these win over `--consumer-opt`.
    config.user_agent = common::user_agent(APP);
    let print_topic = v.bool("print-topic");

    common::init_logging();
    let rt = match common::runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let code = rt.block_on(async {
        let mut consumers = Vec::new();
        for topic in &topics {
            common::log_line(&format!("Adding consumer for topic: {topic}"));
            let consumer = match new_consumer(topic, &channel, &config, max_in_flight) {
                Ok(c) => Arc::new(c),
                Err(msg) => return common::fatal(&msg),
            };
            let handler = Handler {
                topic: print_topic.then(|| topic.clone()),
                total: u64::try_from(total).unwrap_or(0),
                shown: Arc::new(AtomicU64::new(0)),
            };
            consumer.add_concurrent_handlers(1, move |msg: Message| {
                let handler = handler.clone();
                async move {
                    handler.handle(&msg).await;
                    Ok(())
                }
            });
            let connected = match &sources {
                Sources::Nsqd(addrs) => consumer.connect_to_nsqds(addrs).await,
                Sources::Lookupd(addrs) => consumer.connect_to_nsqlookupds(addrs).await,
            };
            if let Err(e) = connected {
                return common::fatal(&common::client_error_text(&e));
            }
            consumers.push(consumer);
        }
        common::shutdown_signal(false).await;
        for c in &consumers {
            c.stop();
        }
        for c in &consumers {
            c.stopped().await;
        }
        ExitCode::SUCCESS
    });
    rt.shutdown_background();
    code
}

/// go-nsq's `NewConsumer` checks, in its order and words.
fn new_consumer(
    topic: &str,
    channel: &str,
    config: &Config,
    max_in_flight: i64,
) -> Result<Consumer, String> {
    let mut config = config.clone();
    config.max_in_flight = usize::try_from(max_in_flight)
        .map_err(|_| format!("invalid MaxInFlight ! {max_in_flight} < 0"))?;
    config.validate().map_err(|e| e.to_string())?;
    if !is_valid_topic_name(topic.as_bytes()) {
        return Err("invalid topic name".into());
    }
    if !is_valid_channel_name(channel.as_bytes()) {
        return Err("invalid channel name".into());
    }
    Consumer::new(topic, channel, config).map_err(|e| common::client_error_text(&e))
}

/// Prints one topic's messages; with `-n` it ends the program after the `n`th one of this topic.
#[derive(Clone)]
struct Handler {
    topic: Option<String>,
    total: u64,
    shown: Arc<AtomicU64>,
}

/// Set once some topic has shown its `-n` messages and the program is about to exit.
static EXITING: AtomicBool = AtomicBool::new(false);

/// How long the earlier messages' FINs get to reach nsqd before the `-n` exit.
const FIN_GRACE: Duration = Duration::from_millis(100);

impl Handler {
    async fn handle(&self, msg: &Message) {
        if EXITING.load(Ordering::SeqCst) {
            // Neither print nor finish: nsqd redelivers it to the channel's next reader.
            return std::future::pending().await;
        }
        let shown = self.shown.fetch_add(1, Ordering::SeqCst) + 1;
        let line = format_line(self.topic.as_deref(), &msg.body);
        let written = {
            let mut out = std::io::stdout().lock();
            out.write_all(&line).and_then(|()| out.flush())
        };
        if let Err(e) = written {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                // Go dies of SIGPIPE here; end quietly with the status a shell reports for that.
                std::process::exit(141);
            }
            common::log_line(&format!("ERROR: failed to write to os.Stdout - {e}"));
            std::process::exit(i32::from(common::EXIT_FATAL));
        }
        // Like Go, exit before this message is finished (nsqd redelivers it after its timeout),
        // but only once the earlier messages' FINs have had time to leave.
        if self.total > 0 && shown >= self.total {
            EXITING.store(true, Ordering::SeqCst);
            tokio::time::sleep(FIN_GRACE).await;
            std::process::exit(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_channels_look_like_gos() {
        for _ in 0..100 {
            let c = random_channel();
            assert_eq!(c.len(), "tail123456#ephemeral".len(), "{c}");
            assert!(c.starts_with("tail") && c.ends_with("#ephemeral"), "{c}");
            assert!(c[4..10].bytes().all(|b| b.is_ascii_digit()), "{c}");
            assert!(is_valid_channel_name(c.as_bytes()));
        }
    }

    #[test]
    fn n_lowers_max_in_flight() {
        assert_eq!(effective_max_in_flight(200, 0), 200);
        assert_eq!(effective_max_in_flight(200, 5), 5);
        assert_eq!(effective_max_in_flight(3, 5), 3);
        assert_eq!(effective_max_in_flight(200, -1), 200);
    }

    #[test]
    fn lines_with_and_without_topic() {
        assert_eq!(format_line(None, b"hi"), b"hi\n");
        assert_eq!(format_line(Some("t"), b"hi"), b"t | hi\n");
        assert_eq!(format_line(Some("t"), b""), b"t | \n");
    }

    #[test]
    fn consumer_checks_in_gos_order() {
        let c = Config::new();
        assert_eq!(
            new_consumer("t", "c", &c, -1).unwrap_err(),
            "invalid MaxInFlight ! -1 < 0"
        );
        assert_eq!(
            new_consumer("a b", "c", &c, 1).unwrap_err(),
            "invalid topic name"
        );
        assert_eq!(
            new_consumer("t", "x y", &c, 1).unwrap_err(),
            "invalid channel name"
        );
        assert!(new_consumer("t", "c#ephemeral", &c, 1).is_ok());
    }
}
