//! Random operations against the engine and against a plain in-memory model of a queue and
//! a topic subscription give the same observable results: the same message ids, bodies and
//! delivery counts, the same ack outcomes, the same depths, across restarts.
//!
//! Leases are long (an hour) so that wall-clock time never expires one during a case.

use ferry_broker::{Broker, BrokerOptions, Error, NewMessage, ReceiveRequest, Settings, StartAt, SubscriptionSettings};
use proptest::prelude::*;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Op {
    Publish { topic: bool, bodies: Vec<(u8, u8)> },
    Receive { topic: bool, max: u32 },
    Ack { topic: bool, pick: usize },
    Nack { topic: bool, pick: usize },
    AckUnknown,
    Purge,
    Reopen { clean: bool },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), proptest::collection::vec((any::<u8>(), 0u8..4), 1..5))
            .prop_map(|(topic, bodies)| Op::Publish { topic, bodies }),
        3 => (any::<bool>(), 1u32..5).prop_map(|(topic, max)| Op::Receive { topic, max }),
        2 => (any::<bool>(), any::<usize>()).prop_map(|(topic, pick)| Op::Ack { topic, pick }),
        1 => (any::<bool>(), any::<usize>()).prop_map(|(topic, pick)| Op::Nack { topic, pick }),
        1 => Just(Op::AckUnknown),
        1 => Just(Op::Purge),
        1 => any::<bool>().prop_map(|clean| Op::Reopen { clean }),
    ]
}

#[derive(Clone, Debug, PartialEq)]
enum Place {
    Ready,
    Leased(u64),
    Gone,
}

#[derive(Clone, Debug)]
struct ModelMsg {
    id: u64,
    body: Vec<u8>,
    priority: u8,
    deliveries: u32,
    place: Place,
}

/// One consumer's view: a queue, or a topic subscription that started at the beginning.
#[derive(Default)]
struct Line {
    topic: bool,
    msgs: Vec<ModelMsg>,
}

impl Line {
    fn receive(&mut self, max: u32) -> Vec<(u64, Vec<u8>, u32)> {
        let mut ready: Vec<usize> = (0..self.msgs.len()).filter(|&i| self.msgs[i].place == Place::Ready).collect();
        // Queues: priority first, then publish order. A topic subscription: redeliveries
        // first, by priority likewise; then new messages in publish order.
        let topic = self.topic;
        ready.sort_by_key(|&i| {
            let m = &self.msgs[i];
            let new_on_topic = topic && m.deliveries == 0;
            (new_on_topic, if new_on_topic { 0 } else { u8::MAX - m.priority }, i)
        });
        ready.truncate(max as usize);
        ready
            .into_iter()
            .map(|i| {
                let m = &mut self.msgs[i];
                m.deliveries += 1;
                m.place = Place::Leased(0);
                (m.id, m.body.clone(), m.deliveries)
            })
            .collect()
    }

    fn leased(&self) -> Vec<usize> {
        (0..self.msgs.len()).filter(|&i| matches!(self.msgs[i].place, Place::Leased(_))).collect()
    }

    fn depth(&self) -> u64 {
        self.msgs.iter().filter(|m| m.place != Place::Gone).count() as u64
    }
}

fn opts() -> BrokerOptions {
    // A few recent records in memory: receives read from both memory and the log.
    BrokerOptions { snapshot_every: 7, segment_size: 4096, pinned_segments: 2, recent_bytes: 1024 }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::open_with(dir.path(), opts()).await.unwrap();
    let settings = Settings { visibility_timeout_ms: 3_600_000, max_deliveries: 0, ..Settings::default() };
    broker.create_queue("q", "ann", settings.clone()).await.unwrap();
    broker.create_topic("t", "ann", settings).await.unwrap();
    broker.subscribe("t", "s", SubscriptionSettings { start: StartAt::Earliest, ..Default::default() }).await.unwrap();
    let (mut queue, mut topic) = (Line::default(), Line { topic: true, ..Line::default() });
    let mut next_id = 0u64;
    let wait = Duration::from_millis(0);
    for op in ops {
        match op {
            Op::Publish { topic: to_topic, bodies } => {
                let name = if to_topic { "t" } else { "q" };
                let msgs: Vec<NewMessage> = bodies
                    .iter()
                    .map(|&(b, p)| NewMessage { priority: p, ..NewMessage::new(vec![b; (b % 7) as usize + 1]) })
                    .collect();
                let published = broker.publish(name, None, msgs).await.unwrap();
                let line = if to_topic { &mut topic } else { &mut queue };
                for (p, &(b, prio)) in published.iter().zip(&bodies) {
                    prop_assert_eq!(p.id, next_id);
                    line.msgs.push(ModelMsg {
                        id: next_id,
                        body: vec![b; (b % 7) as usize + 1],
                        priority: prio,
                        deliveries: 0,
                        place: Place::Ready,
                    });
                    next_id += 1;
                }
            }
            Op::Receive { topic: from_topic, max } => {
                let (name, sub, line) = if from_topic { ("t", Some("s"), &mut topic) } else { ("q", None, &mut queue) };
                let request = ReceiveRequest { max, ..ReceiveRequest::default() };
                let got = broker.receive(name, sub, request, wait).await.unwrap();
                let expected = line.receive(max);
                let seen: Vec<(u64, Vec<u8>, u32)> =
                    got.iter().map(|m| (m.id, m.message.body.to_vec(), m.delivery_count)).collect();
                prop_assert_eq!(&seen, &expected);
                for m in &got {
                    let i = line.msgs.iter().position(|x| x.id == m.id).unwrap();
                    line.msgs[i].place = Place::Leased(m.lease.unwrap());
                }
            }
            Op::Ack { topic: on_topic, pick } | Op::Nack { topic: on_topic, pick } => {
                let ack = matches!(op, Op::Ack { .. });
                let (name, sub, line) = if on_topic { ("t", Some("s"), &mut topic) } else { ("q", None, &mut queue) };
                let leased = line.leased();
                if leased.is_empty() {
                    continue;
                }
                let i = leased[pick % leased.len()];
                let Place::Leased(lease) = line.msgs[i].place else { unreachable!() };
                let r = if ack {
                    broker.ack(name, sub, &[lease]).await.unwrap()
                } else {
                    broker.nack(name, sub, &[lease], Duration::ZERO).await.unwrap()
                };
                prop_assert_eq!(r, vec![Ok(())]);
                line.msgs[i].place = if ack { Place::Gone } else { Place::Ready };
                if ack && on_topic {
                    // Settled for the subscription; the topic keeps it.
                    line.msgs[i].place = Place::Gone;
                }
            }
            Op::AckUnknown => {
                let r = broker.ack("q", None, &[u64::MAX]).await.unwrap();
                prop_assert_eq!(r, vec![Err(Error::UnknownLease { lease: u64::MAX })]);
            }
            Op::Purge => {
                broker.purge("q").await.unwrap();
                for m in &mut queue.msgs {
                    m.place = Place::Gone;
                }
            }
            Op::Reopen { clean } => {
                let before = broker.state_snapshot();
                if clean {
                    broker.close().await.unwrap();
                } else {
                    drop(broker);
                }
                broker = reopen(dir.path()).await;
                prop_assert_eq!(broker.state_snapshot(), before);
            }
        }
        prop_assert_eq!(broker.describe("q").unwrap().stats.depth, queue.depth());
        let sub = &broker.describe("t").unwrap().subscriptions["s"];
        prop_assert_eq!(sub.in_flight, topic.leased().len() as u64);
    }
    broker.close().await.unwrap();
    Ok(())
}

/// Reopens, waiting (bounded) for the dropped broker's log writer to let go of the lock.
async fn reopen(dir: &std::path::Path) -> Broker {
    for _ in 0..500 {
        match Broker::open_with(dir, opts()).await {
            Ok(b) => return b,
            Err(Error::Storage(e)) if e.contains("already open") => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the broker's log stayed locked");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_engine_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..40)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(run(ops))?;
    }
}
