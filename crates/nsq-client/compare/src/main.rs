//! Publishes or consumes a fixed number of messages through nsq-client or tokio-nsq against one
//! nsqd and prints the rate, so both clients can be timed on the same server.
//!
//! `nsq-client-compare <ours|tokio-nsq> <pub|sub> <nsqd tcp addr> <topic> <count> <size> <window>`
//!
//! - pub: PUB `count` messages of `size` bytes, at most `window` unanswered at a time.
//! - sub: consume and FIN `count` messages with max_in_flight = `window`.
use std::time::Instant;

use anyhow::{bail, Context, Result};
use bytes::Bytes;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [client, mode, addr, topic, count, size, window] = args.as_slice() else {
        bail!("usage: nsq-client-compare <ours|tokio-nsq> <pub|sub> <addr> <topic> <count> <size> <window>");
    };
    let count: usize = count.parse().context("count")?;
    let size: usize = size.parse().context("size")?;
    let window: usize = window.parse().context("window")?;
    let start = Instant::now();
    match (client.as_str(), mode.as_str()) {
        ("ours", "pub") => ours_pub(addr, topic, count, size, window).await?,
        ("ours", "sub") => ours_sub(addr, topic, count, window).await?,
        ("tokio-nsq", "pub") => tokio_nsq_pub(addr, topic, count, size, window).await?,
        ("tokio-nsq", "sub") => tokio_nsq_sub(addr, topic, count, window).await?,
        _ => bail!("unknown client or mode: {client} {mode}"),
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{client} {mode}: {count} messages in {secs:.3}s = {:.0} msg/s",
        count as f64 / secs
    );
    Ok(())
}

async fn ours_pub(addr: &str, topic: &str, count: usize, size: usize, window: usize) -> Result<()> {
    let producer = nsq_client::Producer::new(addr, nsq_client::Config::new())?;
    let body = Bytes::from(vec![b'a'; size]);
    let mut tasks = Vec::new();
    for w in 0..window {
        let p = producer.clone();
        let topic = topic.to_string();
        let body = body.clone();
        let n = count / window + usize::from(w < count % window);
        tasks.push(tokio::spawn(async move {
            for _ in 0..n {
                p.publish(&topic, body.clone()).await?;
            }
            Ok::<_, nsq_client::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    producer.stop().await;
    Ok(())
}

async fn ours_sub(addr: &str, topic: &str, count: usize, window: usize) -> Result<()> {
    let mut config = nsq_client::Config::new();
    config.max_in_flight = window;
    let consumer = nsq_client::Consumer::new(topic, "compare", config)?;
    consumer.connect_to_nsqd(addr).await?;
    for _ in 0..count {
        let m = consumer.recv().await.context("consumer stopped early")?;
        m.finish();
    }
    consumer.stop();
    consumer.stopped().await;
    Ok(())
}

async fn tokio_nsq_pub(
    addr: &str,
    topic: &str,
    count: usize,
    size: usize,
    window: usize,
) -> Result<()> {
    use tokio_nsq::{NSQEvent, NSQProducerConfig, NSQTopic};
    let topic = NSQTopic::new(topic).context("topic name")?;
    let mut producer = NSQProducerConfig::new(addr).build();
    match producer.consume().await {
        Some(NSQEvent::Healthy()) => {}
        other => bail!("tokio-nsq producer did not become healthy: {other:?}"),
    }
    let body = vec![b'a'; size];
    let mut sent = 0;
    let mut acked = 0;
    while acked < count {
        while sent < count && sent - acked < window {
            producer.publish(&topic, body.clone()).await?;
            sent += 1;
        }
        match producer.consume().await {
            Some(NSQEvent::Ok()) => acked += 1,
            other => bail!("tokio-nsq publish failed: {other:?}"),
        }
    }
    Ok(())
}

async fn tokio_nsq_sub(addr: &str, topic: &str, count: usize, window: usize) -> Result<()> {
    use tokio_nsq::{NSQChannel, NSQConsumerConfig, NSQConsumerConfigSources, NSQTopic};
    let topic = NSQTopic::new(topic).context("topic name")?;
    let channel = NSQChannel::new("compare").context("channel name")?;
    let mut consumer = NSQConsumerConfig::new(topic, channel)
        .set_max_in_flight(u32::try_from(window)?)
        .set_sources(NSQConsumerConfigSources::Daemons(vec![addr.to_string()]))
        .build();
    for _ in 0..count {
        let m = consumer
            .consume_filtered()
            .await
            .context("consumer stopped early")?;
        m.finish().await;
    }
    Ok(())
}
