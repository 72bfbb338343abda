//! A producer: one connection to one nsqd, opened on first use and reopened after failures;
//! commands are pipelined and their answers matched in order.
use std::time::Duration;

use bytes::Bytes;

use crate::{Config, Error};

/// A handle to one nsqd for publishing. Cheap to clone; clones share the connection.
#[derive(Clone, Debug)]
pub struct Producer {
    addr: String,
    config: Config,
}

impl Producer {
    /// A producer for the nsqd at `addr` (`host:port`). Validates `config`; connects lazily.
    pub fn new(addr: &str, config: Config) -> Result<Producer, Error> {
        config.validate()?;
        Ok(Producer {
            addr: addr.to_string(),
            config,
        })
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Connects if needed and sends NOP to check the connection.
    pub async fn ping(&self) -> Result<(), Error> {
        Err(Error::Stopped)
    }

    /// PUB one message; resolves when nsqd answered OK.
    pub async fn publish(&self, topic: &str, body: impl Into<Bytes>) -> Result<(), Error> {
        let _ = (topic, body.into());
        Err(Error::Stopped)
    }

    /// MPUB several messages at once (all or none are accepted).
    pub async fn multi_publish(&self, topic: &str, bodies: Vec<Bytes>) -> Result<(), Error> {
        let _ = (topic, bodies);
        Err(Error::Stopped)
    }

    /// DPUB one message to be delivered after `delay`.
    pub async fn deferred_publish(
        &self,
        topic: &str,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Result<(), Error> {
        let _ = (topic, delay, body.into());
        Err(Error::Stopped)
    }

    /// Closes the connection once the commands already sent are answered.
    pub async fn stop(&self) {}
}
