//! A consumer: subscribes one topic's channel on every nsqd it is given or discovers, spreads
//! `max_in_flight` across the connections, backs off after failures and stops gracefully.
use crate::{Config, Error, Message};

/// Counters since the consumer started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConsumerStats {
    pub messages_received: u64,
    pub messages_finished: u64,
    pub messages_requeued: u64,
    pub connections: usize,
}

/// A subscription to `topic`/`channel`. Messages arrive through [`Consumer::recv`] (or a
/// handler, see [`Consumer::add_concurrent_handlers`]).
#[derive(Debug)]
pub struct Consumer {
    topic: String,
    channel: String,
    config: Config,
}

impl Consumer {
    /// Validates the names and `config`; nothing connects until an address is given.
    pub fn new(topic: &str, channel: &str, config: Config) -> Result<Consumer, Error> {
        config.validate()?;
        Ok(Consumer {
            topic: topic.to_string(),
            channel: channel.to_string(),
            config,
        })
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connects and subscribes to one nsqd (`host:port`), reconnecting after failures.
    pub async fn connect_to_nsqd(&self, addr: &str) -> Result<(), Error> {
        let _ = addr;
        Err(Error::Stopped)
    }

    pub async fn connect_to_nsqds(&self, addrs: &[String]) -> Result<(), Error> {
        for a in addrs {
            self.connect_to_nsqd(a).await?;
        }
        Ok(())
    }

    /// Adds an nsqlookupd (`host:port` or an `http(s)://` URL) and polls it for the topic's
    /// producers every `lookupd_poll_interval` (with jitter).
    pub async fn connect_to_nsqlookupd(&self, addr: &str) -> Result<(), Error> {
        let _ = addr;
        Err(Error::Stopped)
    }

    pub async fn connect_to_nsqlookupds(&self, addrs: &[String]) -> Result<(), Error> {
        for a in addrs {
            self.connect_to_nsqlookupd(a).await?;
        }
        Ok(())
    }

    /// The next message; `None` once the consumer has stopped and every connection closed.
    pub async fn recv(&self) -> Option<Message> {
        None
    }

    /// Runs `n` tasks, each taking messages and calling `handler`: `Ok` finishes the message,
    /// `Err` requeues it with backoff (unless the handler responded itself). A message past
    /// `max_attempts` is finished without calling the handler, as go-nsq does.
    pub fn add_concurrent_handlers<F, Fut>(self: &std::sync::Arc<Self>, n: usize, handler: F)
    where
        F: Fn(Message) -> Fut + Send + Sync + Clone + 'static,
        Fut: std::future::Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>>
            + Send
            + 'static,
    {
        let _ = (n, handler);
    }

    /// Starts a graceful stop: CLS on every connection; messages already delivered can still be
    /// answered; connections close when nsqd confirms and nothing is in flight.
    pub fn stop(&self) {}

    /// Resolves once the consumer has stopped completely.
    pub async fn stopped(&self) {}

    pub fn stats(&self) -> ConsumerStats {
        ConsumerStats::default()
    }
}
