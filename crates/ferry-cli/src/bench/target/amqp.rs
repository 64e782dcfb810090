//! RabbitMQ over AMQP 0-9-1 (`amqp://`), with the `lapin` client; every producer and
//! consumer has a connection and a channel of its own.
//!
//! A queue run uses one classic queue; a fan-out run a fanout exchange with a queue per
//! consumer. Durable modes (fsync, interval) make the queues durable and the messages
//! persistent (delivery mode 2); `none` makes both transient. Producers always use
//! publisher confirms: a batch's publishes go out together and the call returns once
//! RabbitMQ confirmed each (for persistent messages on a durable queue, after its batched
//! fsync). Consumers ack manually, one `multiple` ack per batch, with `--prefetch` as QoS.

use super::{Endpoint, Pattern, Target, Workload};
use anyhow::Context as _;
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind};
use std::time::Duration;

/// The queue consumer `n` reads.
fn queue(w: &Workload, n: u32) -> String {
    match w.pattern {
        Pattern::Queue => w.name.clone(),
        Pattern::Fanout => format!("{}.s{n}", w.name),
    }
}

/// A connection and a channel on it.
struct Link {
    _conn: Connection,
    channel: Channel,
}

async fn link(url: &str, display: &str) -> anyhow::Result<Link> {
    let conn = tokio::time::timeout(Duration::from_secs(10), Connection::connect(url, ConnectionProperties::default()))
        .await
        .map_err(|_| anyhow::anyhow!("cannot reach {display}: no answer within 10 s"))?
        .map_err(|e| anyhow::anyhow!("cannot reach {display}: {e}"))?;
    let channel = conn.create_channel().await.with_context(|| format!("opening a channel on {display}"))?;
    Ok(Link { _conn: conn, channel })
}

/// RabbitMQ.
pub(crate) struct Rabbit {
    url: String,
    display: String,
    admin: Link,
}

impl Target for Rabbit {
    type Producer = AmqpProducer;
    type Consumer = AmqpConsumer;
    const SYSTEM: &'static str = "rabbitmq";

    async fn connect(endpoint: &Endpoint) -> anyhow::Result<Rabbit> {
        let url = endpoint.url.to_string();
        let display = endpoint.display();
        let admin = link(&url, &display).await?;
        Ok(Rabbit { url, display, admin })
    }

    fn durability(&self, w: &Workload) -> String {
        let acks = if w.auto_ack && w.consumers > 0 { "; no-ack consumers" } else { "" };
        if w.durable() {
            format!(
                "RabbitMQ durable classic queue, persistent messages, publisher confirms (sent after its batched \
                 fsync){acks}"
            )
        } else {
            format!("RabbitMQ transient classic queue and messages, publisher confirms{acks}")
        }
    }

    async fn prepare(&self, w: &Workload) -> anyhow::Result<()> {
        let ch = &self.admin.channel;
        let options = QueueDeclareOptions { durable: w.durable(), ..QueueDeclareOptions::default() };
        match w.pattern {
            Pattern::Queue => {
                ch.queue_declare(queue(w, 0).into(), options, FieldTable::default()).await?;
            }
            Pattern::Fanout => {
                let ex = ExchangeDeclareOptions { durable: w.durable(), ..ExchangeDeclareOptions::default() };
                ch.exchange_declare(w.name.clone().into(), ExchangeKind::Fanout, ex, FieldTable::default()).await?;
                for n in 0..w.consumers {
                    ch.queue_declare(queue(w, n).into(), options, FieldTable::default()).await?;
                    ch.queue_bind(
                        queue(w, n).into(),
                        w.name.clone().into(),
                        "".into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn producer(&self, w: &Workload, _: u32) -> anyhow::Result<AmqpProducer> {
        let link = link(&self.url, &self.display).await?;
        link.channel.confirm_select(ConfirmSelectOptions::default()).await?;
        let (exchange, key) = match w.pattern {
            Pattern::Queue => (String::new(), w.name.clone()),
            Pattern::Fanout => (w.name.clone(), String::new()),
        };
        let properties = BasicProperties::default().with_delivery_mode(if w.durable() { 2 } else { 1 });
        Ok(AmqpProducer { link, exchange, key, properties })
    }

    async fn consumer(&self, w: &Workload, n: u32) -> anyhow::Result<AmqpConsumer> {
        let link = link(&self.url, &self.display).await?;
        let prefetch = u16::try_from(w.prefetch).unwrap_or(u16::MAX);
        link.channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
        let consumer = link
            .channel
            .basic_consume(
                queue(w, n).into(),
                format!("ferry-bench-{n}").into(),
                BasicConsumeOptions { no_ack: w.auto_ack, ..BasicConsumeOptions::default() },
                FieldTable::default(),
            )
            .await?;
        Ok(AmqpConsumer {
            link,
            consumer,
            max: w.prefetch as usize,
            auto_ack: w.auto_ack,
            got: Vec::new(),
            unacked: None,
        })
    }

    async fn cleanup(&self, w: &Workload) -> anyhow::Result<()> {
        let ch = &self.admin.channel;
        let queues = match w.pattern {
            Pattern::Queue => 1,
            Pattern::Fanout => w.consumers,
        };
        for n in 0..queues {
            ch.queue_delete(queue(w, n).into(), QueueDeleteOptions::default()).await?;
        }
        if w.pattern == Pattern::Fanout {
            ch.exchange_delete(w.name.clone().into(), ExchangeDeleteOptions::default()).await?;
        }
        Ok(())
    }
}

pub(crate) struct AmqpProducer {
    link: Link,
    exchange: String,
    key: String,
    properties: BasicProperties,
}

impl super::Producer for AmqpProducer {
    async fn publish(&mut self, batch: &[Bytes]) -> anyhow::Result<()> {
        // Every publish of the batch at once: lapin's publish waits for its frame to be
        // written, so one at a time would measure the client.
        let ch = &self.link.channel;
        let publishes = batch.iter().map(|b| {
            ch.basic_publish(
                self.exchange.as_str().into(),
                self.key.as_str().into(),
                BasicPublishOptions::default(),
                b,
                self.properties.clone(),
            )
        });
        let confirms = futures::future::try_join_all(publishes).await.context("publishing")?;
        for c in confirms {
            match c.await.context("waiting for a publisher confirm")? {
                Confirmation::Ack(_) | Confirmation::NotRequested => {}
                Confirmation::Nack(_) => anyhow::bail!("RabbitMQ refused a message (nack)"),
            }
        }
        Ok(())
    }
}

pub(crate) struct AmqpConsumer {
    link: Link,
    consumer: lapin::Consumer,
    max: usize,
    auto_ack: bool,
    got: Vec<lapin::Result<lapin::message::Delivery>>,
    /// The last delivery tag not acked yet.
    unacked: Option<u64>,
}

impl super::Consumer for AmqpConsumer {
    async fn receive(&mut self, out: &mut Vec<Bytes>, wait: Duration) -> anyhow::Result<()> {
        match tokio::time::timeout(wait, self.consumer.next()).await {
            Err(_) => return Ok(()),
            Ok(None) => anyhow::bail!("the consumer was cancelled"),
            Ok(Some(d)) => self.got.push(d),
        }
        while self.got.len() < self.max {
            match self.consumer.next().now_or_never() {
                Some(Some(d)) => self.got.push(d),
                _ => break,
            }
        }
        for d in self.got.drain(..) {
            let d = d.context("receiving")?;
            if !self.auto_ack {
                self.unacked = Some(self.unacked.map_or(d.delivery_tag, |t| t.max(d.delivery_tag)));
            }
            out.push(Bytes::from(d.data));
        }
        Ok(())
    }

    async fn ack(&mut self) -> anyhow::Result<()> {
        if let Some(tag) = self.unacked.take() {
            self.link.channel.basic_ack(tag, BasicAckOptions { multiple: true }).await.context("acking")?;
        }
        Ok(())
    }
}
