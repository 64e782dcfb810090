//! The state machine's queue behaviour, command by command, with time passed in by hand.

use ferry_broker::{
    Command, Delivery, Error, Kind, NewMessage, Outcome, ReceiveRequest, Settings, SettleAction, State,
};

struct Machine {
    state: State,
    index: u64,
}

impl Machine {
    fn new() -> Machine {
        Machine { state: State::new(), index: 0 }
    }

    fn run(&mut self, cmd: Command) -> Outcome {
        self.index += 1;
        self.state.apply(self.index, &cmd)
    }

    fn queue(&mut self, name: &str, settings: Settings) {
        let cmd =
            Command::CreateDestination { now: 0, owner: "ann".into(), name: name.into(), kind: Kind::Queue, settings };
        assert_eq!(self.run(cmd), Outcome::Done);
    }

    fn publish(&mut self, now: u64, name: &str, messages: Vec<NewMessage>) -> Outcome {
        self.run(Command::Publish { now, name: name.into(), producer: None, messages })
    }

    fn receive(&mut self, now: u64, name: &str, max: u32) -> Vec<Delivery> {
        let request = ReceiveRequest { max, ..ReceiveRequest::default() };
        match self.run(Command::Receive { now, name: name.into(), subscription: None, request }) {
            Outcome::Received(d) => d,
            other => panic!("{other:?}"),
        }
    }

    fn settle(&mut self, now: u64, name: &str, leases: &[u64], action: SettleAction) -> Vec<Result<(), Error>> {
        match self.run(Command::Settle { now, name: name.into(), subscription: None, leases: leases.to_vec(), action })
        {
            Outcome::Settled(r) => r,
            other => panic!("{other:?}"),
        }
    }

    /// Applies a command that must fail, and checks that it changed nothing.
    fn refused(&mut self, cmd: Command) -> Error {
        let before = self.state.clone();
        let outcome = self.run(cmd);
        let mut after = self.state.clone();
        // Only the applied index moves.
        let restored = {
            let mut s = before.clone();
            s.apply(self.index, &Command::DeleteDestination { name: "\u{0}".into() });
            s
        };
        after.apply(self.index, &Command::DeleteDestination { name: "\u{0}".into() });
        assert_eq!(after, restored, "a refused command changed the state");
        match outcome {
            Outcome::Failed(e) => e,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

fn msg(body: &str) -> NewMessage {
    NewMessage::new(body.to_string())
}

fn ids(d: &[Delivery]) -> Vec<u64> {
    d.iter().map(|d| d.id).collect()
}

#[test]
fn competing_consumers_get_each_message_once_and_ack_removes_it() {
    let mut m = Machine::new();
    m.queue("q", Settings::default());
    m.publish(1, "q", vec![msg("a"), msg("b"), msg("c")]);
    let first = m.receive(2, "q", 2);
    let second = m.receive(2, "q", 2);
    assert_eq!(first.len(), 2);
    assert_eq!(second.len(), 1);
    assert!(m.receive(2, "q", 5).is_empty(), "everything is leased");
    let leases: Vec<u64> = first.iter().chain(&second).filter_map(|d| d.lease).collect();
    assert!(m.settle(3, "q", &leases, SettleAction::Ack).iter().all(Result::is_ok));
    let info = m.state.describe("q", 3).unwrap();
    assert_eq!((info.stats.depth, info.stats.acked, info.stats.in_flight), (0, 3, 0));
    // Acking again is refused per lease, and changes nothing.
    assert_eq!(m.settle(4, "q", &leases[..1], SettleAction::Ack), vec![Err(Error::UnknownLease { lease: leases[0] })]);
}

#[test]
fn higher_priority_first_then_fifo() {
    let mut m = Machine::new();
    m.queue("q", Settings::default());
    let p = |body: &str, priority| NewMessage { priority, ..msg(body) };
    m.publish(1, "q", vec![p("low1", 1), p("high1", 9), p("low2", 1), p("high2", 9), p("mid", 5)]);
    let got = m.receive(2, "q", 10);
    let order: Vec<u64> = got.iter().map(|d| d.offset).collect();
    assert_eq!(order, vec![1, 3, 4, 0, 2]);
}

#[test]
fn an_expired_lease_redelivers_and_too_many_deliveries_dead_letter() {
    let mut m = Machine::new();
    m.queue("q", Settings { visibility_timeout_ms: 100, max_deliveries: 2, ..Settings::default() });
    m.publish(0, "q", vec![msg("x")]);
    let d1 = m.receive(10, "q", 1);
    assert_eq!(d1[0].delivery_count, 1);
    assert!(m.receive(50, "q", 1).is_empty(), "still leased");
    // An ack after the lease ran out is refused.
    let late = m.settle(110, "q", &[d1[0].lease.unwrap()], SettleAction::Ack);
    assert!(matches!(late[0], Err(Error::LeaseExpired { .. }) | Err(Error::UnknownLease { .. })), "{late:?}");
    let d2 = m.receive(120, "q", 1);
    assert_eq!((d2[0].id, d2[0].delivery_count), (d1[0].id, 2));
    // The second lease runs out too: two deliveries is the limit, so it goes to q.dlq.
    assert!(m.receive(300, "q", 1).is_empty());
    let info = m.state.describe("q", 300).unwrap();
    assert_eq!((info.stats.depth, info.stats.dead_lettered), (0, 1));
    let dead = m.receive(301, "q.dlq", 1);
    assert_eq!(dead[0].id, d1[0].id);
    assert!(dead[0].dead_letter_reason.as_deref().unwrap().contains("delivered 2 times"), "{dead:?}");
}

#[test]
fn nack_with_delay_and_extend() {
    let mut m = Machine::new();
    m.queue("q", Settings { visibility_timeout_ms: 100, ..Settings::default() });
    m.publish(0, "q", vec![msg("x")]);
    let d = m.receive(0, "q", 1);
    let lease = d[0].lease.unwrap();
    assert_eq!(m.settle(50, "q", &[lease], SettleAction::Extend { visibility_ms: 500 }), vec![Ok(())]);
    assert!(m.receive(200, "q", 1).is_empty(), "extended to 550");
    assert_eq!(m.settle(300, "q", &[lease], SettleAction::Nack { delay_ms: 1000 }), vec![Ok(())]);
    assert!(m.receive(1200, "q", 1).is_empty(), "delayed until 1300");
    assert_eq!(ids(&m.receive(1300, "q", 1)), ids(&d));
}

#[test]
fn auto_ack_removes_on_receive() {
    let mut m = Machine::new();
    m.queue("q", Settings::default());
    m.publish(0, "q", vec![msg("a"), msg("b")]);
    let request = ReceiveRequest { max: 10, auto_ack: true, ..ReceiveRequest::default() };
    let Outcome::Received(got) = m.run(Command::Receive { now: 1, name: "q".into(), subscription: None, request })
    else {
        panic!()
    };
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|d| d.lease.is_none()));
    assert_eq!(m.state.describe("q", 1).unwrap().stats.depth, 0);
}

#[test]
fn delay_ttl_and_dedup() {
    let mut m = Machine::new();
    m.queue("q", Settings { dedup_window_ms: 1000, ..Settings::default() });
    m.publish(0, "q", vec![NewMessage { delay_ms: 100, ..msg("later") }, NewMessage { ttl_ms: 50, ..msg("short") }]);
    assert!(m.receive(60, "q", 10).is_empty(), "the short one expired, the later one is not due");
    assert_eq!(m.state.describe("q", 60).unwrap().stats.expired, 1);
    assert_eq!(m.receive(100, "q", 10).len(), 1);

    let d = |id: &str| NewMessage { dedup_id: Some(id.into()), ..msg(id) };
    let Outcome::Published(p) = m.publish(200, "q", vec![d("k1"), d("k1"), d("k2")]) else { panic!() };
    assert_eq!(p.iter().map(|p| p.duplicate).collect::<Vec<_>>(), [false, true, false]);
    assert_eq!(p[0].id, p[1].id);
    let Outcome::Published(p) = m.publish(900, "q", vec![d("k1")]) else { panic!() };
    assert!(p[0].duplicate, "within the window");
    let Outcome::Published(p) = m.publish(1300, "q", vec![d("k1")]) else { panic!() };
    assert!(!p[0].duplicate, "the window passed");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let mut m = Machine::new();
    m.queue("q", Settings { max_message_size: 10, ..Settings::default() });
    m.publish(0, "q", vec![msg("a")]);
    let too_big = m.refused(Command::Publish {
        now: 1,
        name: "q".into(),
        producer: None,
        messages: vec![msg("ok"), msg("this is longer than ten")],
    });
    assert!(matches!(too_big, Error::MessageTooLarge { size: 23, max: 10 }));
    assert!(matches!(
        m.refused(Command::Publish { now: 1, name: "nope".into(), producer: None, messages: vec![msg("a")] }),
        Error::NotFound { .. }
    ));
    let bad_name = Command::CreateDestination {
        now: 1,
        owner: "ann".into(),
        name: "no spaces".into(),
        kind: Kind::Queue,
        settings: Settings::default(),
    };
    assert!(matches!(m.refused(bad_name), Error::InvalidName { .. }));
    let dup = Command::CreateDestination {
        now: 1,
        owner: "bob".into(),
        name: "q".into(),
        kind: Kind::Topic,
        settings: Settings::default(),
    };
    assert!(matches!(m.refused(dup), Error::AlreadyExists { .. }));
    let retention_on_queue = Command::CreateDestination {
        now: 1,
        owner: "ann".into(),
        name: "q2".into(),
        kind: Kind::Queue,
        settings: Settings { max_messages: 5, ..Settings::default() },
    };
    assert!(matches!(m.refused(retention_on_queue), Error::Invalid { .. }));
    let zero = ReceiveRequest { max: 0, ..ReceiveRequest::default() };
    assert!(matches!(
        m.refused(Command::Receive { now: 1, name: "q".into(), subscription: None, request: zero }),
        Error::Invalid { .. }
    ));
    assert!(matches!(
        m.refused(Command::Receive {
            now: 1,
            name: "q".into(),
            subscription: Some("s".into()),
            request: ReceiveRequest::default()
        }),
        Error::WrongKind(_)
    ));
}

#[test]
fn purge_and_delete() {
    let mut m = Machine::new();
    m.queue("q", Settings::default());
    m.publish(0, "q", vec![msg("a"), msg("b")]);
    let leased = m.receive(1, "q", 1);
    assert_eq!(m.run(Command::Purge { now: 2, name: "q".into() }), Outcome::Done);
    assert!(m.receive(3, "q", 10).is_empty());
    assert_eq!(m.settle(3, "q", &[leased[0].lease.unwrap()], SettleAction::Ack).len(), 1);
    assert_eq!(m.run(Command::DeleteDestination { name: "q".into() }), Outcome::Done);
    assert!(m.state.list().is_empty());
}

#[test]
fn snapshots_round_trip_exactly() {
    let mut m = Machine::new();
    m.queue("q", Settings::default());
    m.publish(0, "q", vec![msg("a"), NewMessage { priority: 3, subject: Some("x.y".into()), ..msg("b") }]);
    m.receive(1, "q", 1);
    let bytes = m.state.encode().unwrap();
    assert_eq!(State::decode(&bytes).unwrap(), m.state);
    assert!(State::decode(&bytes[..bytes.len() / 2]).is_err());
}

#[test]
fn a_tick_applies_deadlines_without_touching_the_queue() {
    let mut m = Machine::new();
    m.queue("q", Settings { visibility_timeout_ms: 100, max_deliveries: 1, ..Settings::default() });
    m.publish(0, "q", vec![msg("x")]);
    m.receive(0, "q", 1);
    assert_eq!(m.state.next_deadline(), Some(100));
    assert_eq!(m.run(Command::Tick { now: 50 }), Outcome::Done);
    assert!(m.state.list().iter().all(|(n, _)| n != "q.dlq"), "not yet");
    assert_eq!(m.run(Command::Tick { now: 100 }), Outcome::Done);
    assert_eq!(m.state.describe("q", 100).unwrap().stats.dead_lettered, 1);
    assert_eq!(m.state.describe("q.dlq", 100).unwrap().stats.depth, 1);
    assert_eq!(m.state.next_deadline(), None);
}

#[test]
fn settings_can_change_and_bad_ones_change_nothing() {
    let mut m = Machine::new();
    m.queue("q", Settings::default());
    let tighter = Settings { visibility_timeout_ms: 100, max_message_size: 4, ..Settings::default() };
    assert_eq!(m.run(Command::UpdateSettings { name: "q".into(), settings: tighter }), Outcome::Done);
    assert!(matches!(m.publish(0, "q", vec![msg("too long")]), Outcome::Failed(Error::MessageTooLarge { .. })));
    m.publish(0, "q", vec![msg("ok")]);
    m.receive(0, "q", 1);
    assert_eq!(m.state.next_deadline(), Some(100), "the new visibility timeout applies");
    let bad = Settings { max_messages: 3, ..Settings::default() };
    assert!(matches!(m.refused(Command::UpdateSettings { name: "q".into(), settings: bad }), Error::Invalid { .. }));
}
