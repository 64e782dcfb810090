//! The state machine's topic behaviour: subscriptions, filters, retention, seek.

use ferry_broker::{
    Command, Delivery, Error, Kind, NewMessage, Outcome, ReceiveRequest, Settings, SettleAction, StartAt, State,
    SubscriptionSettings,
};

struct Machine {
    state: State,
    index: u64,
}

impl Machine {
    fn with_topic(settings: Settings) -> Machine {
        let mut m = Machine { state: State::new(), index: 0 };
        let cmd =
            Command::CreateDestination { now: 0, owner: "ann".into(), name: "t".into(), kind: Kind::Topic, settings };
        assert_eq!(m.run(cmd), Outcome::Done);
        m
    }

    fn run(&mut self, cmd: Command) -> Outcome {
        self.index += 1;
        self.state.apply(self.index, &cmd)
    }

    fn subscribe(&mut self, now: u64, name: &str, settings: SubscriptionSettings) -> Outcome {
        self.run(Command::CreateSubscription { now, topic: "t".into(), name: name.into(), settings })
    }

    fn publish_as(&mut self, now: u64, producer: Option<&str>, messages: Vec<NewMessage>) {
        let out = self.run(Command::Publish { now, name: "t".into(), producer: producer.map(Into::into), messages });
        assert!(matches!(out, Outcome::Published(_)), "{out:?}");
    }

    fn publish(&mut self, now: u64, bodies: &[&str]) {
        self.publish_as(now, None, bodies.iter().map(|b| NewMessage::new(b.to_string())).collect());
    }

    fn receive_as(&mut self, now: u64, sub: &str, max: u32, consumer: Option<&str>) -> Vec<Delivery> {
        let request = ReceiveRequest { max, consumer: consumer.map(Into::into), ..ReceiveRequest::default() };
        match self.run(Command::Receive { now, name: "t".into(), subscription: Some(sub.into()), request }) {
            Outcome::Received(d) => d,
            other => panic!("{other:?}"),
        }
    }

    fn receive(&mut self, now: u64, sub: &str, max: u32) -> Vec<u64> {
        self.receive_as(now, sub, max, None).iter().map(|d| d.offset).collect()
    }
}

#[test]
fn every_subscription_sees_every_message_from_its_start() {
    let mut m = Machine::with_topic(Settings::default());
    m.publish(1, &["a", "b"]);
    assert_eq!(m.subscribe(2, "new", SubscriptionSettings::default()), Outcome::Done);
    let earliest = SubscriptionSettings { start: StartAt::Earliest, ..Default::default() };
    assert_eq!(m.subscribe(2, "all", earliest), Outcome::Done);
    assert_eq!(
        m.subscribe(2, "from1", SubscriptionSettings { start: StartAt::Offset(1), ..Default::default() }),
        Outcome::Done
    );
    m.publish(3, &["c"]);
    assert_eq!(
        m.subscribe(4, "since3", SubscriptionSettings { start: StartAt::Time(3), ..Default::default() }),
        Outcome::Done
    );
    assert_eq!(m.receive(5, "new", 10), vec![2]);
    assert_eq!(m.receive(5, "all", 10), vec![0, 1, 2]);
    assert_eq!(m.receive(5, "from1", 10), vec![1, 2]);
    assert_eq!(m.receive(5, "since3", 10), vec![2]);
    // Receiving on one subscription takes nothing from another.
    let info = m.state.describe("t", 5).unwrap();
    assert_eq!(info.stats.depth, 3);
    assert_eq!(info.subscriptions["all"].in_flight, 3);
}

#[test]
fn a_shared_subscription_splits_messages_and_redelivers_unacked_ones() {
    let mut m = Machine::with_topic(Settings { visibility_timeout_ms: 100, ..Settings::default() });
    m.subscribe(0, "workers", SubscriptionSettings::default());
    m.publish(1, &["a", "b", "c"]);
    let one = m.receive_as(2, "workers", 2, Some("w1"));
    let two = m.receive_as(2, "workers", 2, Some("w2"));
    assert_eq!((one.len(), two.len()), (2, 1));
    let ack = Command::Settle {
        now: 3,
        name: "t".into(),
        subscription: Some("workers".into()),
        leases: vec![one[0].lease.unwrap()],
        action: SettleAction::Ack,
    };
    assert_eq!(m.run(ack), Outcome::Settled(vec![Ok(())]));
    // The unacked ones come back after the visibility timeout, in priority-then-offset order.
    assert_eq!(m.receive(200, "workers", 10), vec![one[1].offset, two[0].offset]);
}

#[test]
fn filters_and_no_local() {
    let mut m = Machine::with_topic(Settings::default());
    let filtered = SubscriptionSettings { filter: Some("orders.*.paid".into()), ..Default::default() };
    m.subscribe(0, "paid", filtered);
    m.subscribe(0, "others", SubscriptionSettings { no_local: true, ..Default::default() });
    let s = |subject: &str| NewMessage { subject: Some(subject.into()), ..NewMessage::new("x") };
    m.publish_as(1, Some("me"), vec![s("orders.1.paid"), s("orders.1.sent"), s("orders.2.paid")]);
    m.publish_as(1, Some("you"), vec![s("orders.3.paid")]);
    assert_eq!(m.receive(2, "paid", 10), vec![0, 2, 3]);
    let mine: Vec<u64> = m.receive_as(2, "others", 10, Some("me")).iter().map(|d| d.offset).collect();
    assert_eq!(mine, vec![3], "no_local skips my own publications");
    assert!(matches!(
        m.subscribe(0, "bad", SubscriptionSettings { filter: Some("a.>.b".into()), ..Default::default() }),
        Outcome::Failed(Error::Invalid { .. })
    ));
}

#[test]
fn retention_by_count_bytes_and_age() {
    let mut m = Machine::with_topic(Settings { max_messages: 3, ..Settings::default() });
    m.subscribe(0, "s", SubscriptionSettings { start: StartAt::Earliest, ..Default::default() });
    m.publish(1, &["1", "2", "3", "4", "5"]);
    assert_eq!(m.receive(2, "s", 10), vec![2, 3, 4]);
    assert_eq!(m.state.describe("t", 2).unwrap().stats.expired, 2);

    let mut m = Machine::with_topic(Settings { max_bytes: 10, ..Settings::default() });
    m.publish(1, &["aaaa", "bbbb", "cccc"]);
    assert_eq!(m.state.describe("t", 1).unwrap().stats.depth, 2);

    let mut m = Machine::with_topic(Settings { max_age_ms: 100, ..Settings::default() });
    m.subscribe(0, "s", SubscriptionSettings { start: StartAt::Earliest, ..Default::default() });
    m.publish(0, &["old"]);
    m.publish(80, &["young"]);
    assert_eq!(m.receive(120, "s", 10), vec![1]);
}

#[test]
fn seek_replays() {
    let mut m = Machine::with_topic(Settings::default());
    m.subscribe(0, "s", SubscriptionSettings::default());
    m.publish(10, &["a", "b"]);
    m.publish(20, &["c"]);
    assert_eq!(m.receive(30, "s", 10), vec![0, 1, 2]);
    let seek = |to| Command::Seek { now: 31, topic: "t".into(), name: "s".into(), to };
    assert_eq!(m.run(seek(StartAt::Offset(1))), Outcome::Done);
    assert_eq!(m.receive(32, "s", 10), vec![1, 2]);
    assert_eq!(m.run(seek(StartAt::Time(20))), Outcome::Done);
    assert_eq!(m.receive(33, "s", 10), vec![2]);
    assert!(matches!(
        m.run(Command::Seek { now: 34, topic: "t".into(), name: "nope".into(), to: StartAt::Earliest }),
        Outcome::Failed(Error::SubscriptionNotFound { .. })
    ));
}
