//! The local engine: durability across restarts, long polls, lease timers, reclaiming log
//! segments.

use ferry_broker::{Broker, BrokerOptions, Error, NewMessage, ReceiveRequest, Settings, StartAt, SubscriptionSettings};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn small() -> BrokerOptions {
    // Nothing kept in memory: every receive reads the log, as after a restart.
    BrokerOptions { snapshot_every: 50, segment_size: 8192, pinned_segments: 2, recent_bytes: 0 }
}

fn body(i: usize) -> NewMessage {
    NewMessage {
        headers: [("n".to_string(), i.to_string())].into(),
        subject: Some(format!("orders.{i}")),
        ..NewMessage::new(format!("message {i}"))
    }
}

fn segment_files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir.join("log"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".log"))
        .count()
}

#[tokio::test]
async fn the_state_after_reopening_equals_the_state_before() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(dir.path(), small()).await.unwrap();
    broker.create_queue("jobs", "ann", Settings::default()).await.unwrap();
    broker.create_topic("events", "ann", Settings::default()).await.unwrap();
    broker
        .subscribe("events", "audit", SubscriptionSettings { start: StartAt::Earliest, ..Default::default() })
        .await
        .unwrap();
    for i in 0..120 {
        broker.publish("jobs", Some("ann"), vec![body(i)]).await.unwrap();
        broker.publish("events", None, vec![body(i)]).await.unwrap();
    }
    let got = broker.receive("jobs", None, ReceiveRequest { max: 30, ..Default::default() }, WAIT).await.unwrap();
    let leases: Vec<u64> = got.iter().filter_map(|m| m.lease).take(20).collect();
    broker.ack("jobs", None, &leases).await.unwrap();
    broker.receive("events", Some("audit"), ReceiveRequest { max: 7, ..Default::default() }, WAIT).await.unwrap();
    let before = broker.state_snapshot();
    let info = broker.describe("jobs").unwrap();
    broker.close().await.unwrap();

    let broker = Broker::open_with(dir.path(), small()).await.unwrap();
    assert_eq!(broker.state_snapshot(), before);
    assert_eq!(
        broker.describe("jobs").unwrap().stats,
        ferry_broker::Stats { oldest_age_ms: broker.describe("jobs").unwrap().stats.oldest_age_ms, ..info.stats }
    );
    // The leases survived too: the 10 unacked ones can still be acked.
    let rest: Vec<u64> = got.iter().filter_map(|m| m.lease).skip(20).collect();
    assert!(broker.ack("jobs", None, &rest).await.unwrap().iter().all(Result::is_ok));
}

#[tokio::test]
async fn reopening_without_a_clean_close_replays_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let before = {
        let broker =
            Broker::open_with(dir.path(), BrokerOptions { snapshot_every: 1_000_000, ..small() }).await.unwrap();
        broker.create_queue("jobs", "ann", Settings::default()).await.unwrap();
        for i in 0..40 {
            broker.publish("jobs", None, vec![body(i)]).await.unwrap();
        }
        broker.state_snapshot()
        // Dropped without close: no snapshot, everything comes from the log.
    };
    let broker = Broker::open_with(dir.path(), small()).await.unwrap();
    assert_eq!(broker.state_snapshot(), before);
    let got = broker.peek("jobs", 0, 100).await.unwrap();
    assert_eq!(got.len(), 40);
    assert_eq!(got[7].message, body(7));
}

#[tokio::test]
async fn a_clone_that_outlives_close_cannot_overwrite_a_newer_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let old = Broker::open_with(dir.path(), small()).await.unwrap();
    let stale = old.clone();
    old.create_queue("jobs", "ann", Settings::default()).await.unwrap();
    old.close().await.unwrap();

    let new = Broker::open_with(dir.path(), small()).await.unwrap();
    for i in 0..5 {
        new.publish("jobs", None, vec![body(i)]).await.unwrap();
    }
    new.snapshot().await.unwrap();
    let written = std::fs::read(dir.path().join("snapshot")).unwrap();
    // The clone (or the snapshot task) of the closed broker wakes up late.
    assert_eq!(stale.snapshot().await, Err(Error::Closed));
    assert_eq!(stale.clone().close().await, Err(Error::Closed));
    drop(stale);
    assert_eq!(std::fs::read(dir.path().join("snapshot")).unwrap(), written, "a stale snapshot replaced it");
    let after = new.state_snapshot();
    drop(new);

    let reopened = Broker::open_with(dir.path(), small()).await.unwrap();
    assert_eq!(reopened.state_snapshot(), after);
    assert_eq!(reopened.peek("jobs", 0, 10).await.unwrap().len(), 5);
}

#[tokio::test]
async fn a_long_poll_gets_a_message_published_while_it_waits() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).await.unwrap();
    broker.create_queue("q", "ann", Settings::default()).await.unwrap();
    let consumer = broker.clone();
    let waiting =
        tokio::spawn(async move { consumer.receive("q", None, ReceiveRequest::default(), WAIT).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(50)).await;
    broker.publish("q", None, vec![body(1)]).await.unwrap();
    let got = tokio::time::timeout(WAIT, waiting).await.unwrap().unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].message, body(1));
    // And an empty poll ends at its deadline with nothing.
    let none = broker.receive("q", None, ReceiveRequest::default(), Duration::from_millis(50)).await.unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn an_expired_lease_is_redelivered_to_a_waiting_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).await.unwrap();
    broker.create_queue("q", "ann", Settings { visibility_timeout_ms: 100, ..Settings::default() }).await.unwrap();
    broker.publish("q", None, vec![body(1)]).await.unwrap();
    let first = broker.receive("q", None, ReceiveRequest::default(), WAIT).await.unwrap();
    // Nobody acks; a second consumer waiting gets it when the lease runs out.
    let second = broker.receive("q", None, ReceiveRequest::default(), WAIT).await.unwrap();
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].delivery_count, 2);
    let late = broker.ack("q", None, &[first[0].lease.unwrap()]).await.unwrap();
    assert!(matches!(late[0], Err(Error::LeaseExpired { .. }) | Err(Error::UnknownLease { .. })));
    assert_eq!(broker.ack("q", None, &[second[0].lease.unwrap()]).await.unwrap(), vec![Ok(())]);
}

#[tokio::test]
async fn settled_segments_are_deleted_and_old_unacked_messages_copied_forward() {
    let dir = tempfile::tempdir().unwrap();
    let opts = BrokerOptions { snapshot_every: 1_000_000, ..small() };
    let broker = Broker::open_with(dir.path(), opts).await.unwrap();
    broker.create_queue("q", "ann", Settings::default()).await.unwrap();
    // One message that stays unacked for the whole test, then lots of traffic.
    broker.publish("q", None, vec![NewMessage { priority: 0, ..body(0) }]).await.unwrap();
    let pinned = broker.receive("q", None, ReceiveRequest::default(), WAIT).await.unwrap();
    for _ in 0..20 {
        let batch: Vec<NewMessage> = (0..10).map(|_| NewMessage::new(vec![b'x'; 300])).collect();
        broker.publish("q", None, batch).await.unwrap();
        let got = broker.receive("q", None, ReceiveRequest { max: 10, ..Default::default() }, WAIT).await.unwrap();
        let leases: Vec<u64> = got.iter().filter_map(|m| m.lease).collect();
        broker.ack("q", None, &leases).await.unwrap();
    }
    let files_before = segment_files(dir.path());
    broker.snapshot().await.unwrap();
    broker.snapshot().await.unwrap(); // the relocation itself is reclaimed by the next one
    let files_after = segment_files(dir.path());
    assert!(files_after < files_before, "segments {files_before} → {files_after}");
    // The long-unacked message is still there, whole, and its lease still works.
    let left = broker.peek("q", 0, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].message, body(0));
    assert_eq!(broker.ack("q", None, &[pinned[0].lease.unwrap()]).await.unwrap(), vec![Ok(())]);
    broker.close().await.unwrap();
    let broker = Broker::open_with(dir.path(), small()).await.unwrap();
    assert_eq!(broker.describe("q").unwrap().stats.depth, 0);
}

#[tokio::test]
async fn bad_requests_get_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).await.unwrap();
    assert!(matches!(
        broker.create_queue("bad name", "ann", Settings::default()).await,
        Err(Error::InvalidName { .. })
    ));
    assert!(matches!(broker.publish("nope", None, vec![body(1)]).await, Err(Error::NotFound { .. })));
    broker.create_queue("q", "ann", Settings::default()).await.unwrap();
    let big = NewMessage::new(vec![0u8; (1 << 20) + 1]);
    assert!(matches!(broker.publish("q", None, vec![big]).await, Err(Error::MessageTooLarge { .. })));
    assert_eq!(broker.describe("q").unwrap().stats.published, 0);
    assert!(matches!(
        broker.receive("q", Some("sub"), ReceiveRequest::default(), WAIT).await,
        Err(Error::WrongKind(_))
    ));
    assert_eq!(broker.ack("q", None, &[12345]).await.unwrap(), vec![Err(Error::UnknownLease { lease: 12345 })]);
}

#[tokio::test]
async fn interval_durability_publishes_without_waiting_for_a_sync() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open(dir.path()).await.unwrap();
    let settings = Settings { durability: ferry_broker::Durability::Interval(20), ..Settings::default() };
    broker.create_queue("q", "ann", settings).await.unwrap();
    for i in 0..50 {
        broker.publish("q", None, vec![body(i)]).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(60)).await; // the interval sync runs meanwhile
    broker.close().await.unwrap();
    let broker = Broker::open(dir.path()).await.unwrap();
    assert_eq!(broker.describe("q").unwrap().stats.depth, 50);
    let bad = Settings { durability: ferry_broker::Durability::Interval(0), ..Settings::default() };
    assert!(matches!(broker.create_queue("r", "ann", bad).await, Err(Error::Invalid { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_give_up_midway_do_not_hold_up_later_commands() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(dir.path(), small()).await.unwrap();
    broker.create_queue("q", "ann", Settings::default()).await.unwrap();
    // Each publish is abandoned at some point of its way (a client that went away, a
    // deadline), many of them after the log took the command and before it was applied.
    for i in 0..300 {
        let wait = Duration::from_micros(20 * (i % 50) as u64);
        let _ = tokio::time::timeout(wait, broker.publish("q", None, vec![body(i)])).await;
    }
    let later = tokio::time::timeout(WAIT, broker.publish("q", None, vec![body(1000)])).await;
    assert!(later.is_ok(), "a publish written but never applied held up every later command");
    later.unwrap().unwrap();
    // Every abandoned publish that reached the log was applied too.
    let depth = broker.describe("q").unwrap().stats.depth;
    assert_eq!(depth, broker.peek("q", 0, 1000).await.unwrap().len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_racing_a_snapshot_find_the_messages_it_moved() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::open_with(dir.path(), small()).await.unwrap();
    broker.create_queue("q", "ann", Settings::default()).await.unwrap();
    broker.create_queue("old", "ann", Settings { max_deliveries: 0, ..Settings::default() }).await.unwrap();
    // Messages that stay while the traffic below fills segments: every snapshot copies
    // them forward and deletes the segments they were in, while readers look at them.
    broker.publish("old", None, (0..5).map(body).collect()).await.unwrap();
    let traffic = {
        let broker = broker.clone();
        tokio::spawn(async move {
            for _ in 0..600 {
                let batch: Vec<NewMessage> = (0..10).map(|_| NewMessage::new(vec![b'x'; 300])).collect();
                broker.publish("q", None, batch).await.unwrap();
                let got =
                    broker.receive("q", None, ReceiveRequest { max: 10, ..Default::default() }, WAIT).await.unwrap();
                let leases: Vec<u64> = got.iter().filter_map(|m| m.lease).collect();
                broker.ack("q", None, &leases).await.unwrap();
            }
        })
    };
    let peeker = {
        let broker = broker.clone();
        tokio::spawn(async move {
            let mut peeks = 0;
            while peeks < 100_000 {
                // Leased messages are not in a peek: some or all of the five, whole.
                for m in broker.peek("old", 0, 10).await.unwrap() {
                    assert!((0..5).map(body).any(|b| b == m.message), "{:?}", m.message);
                }
                peeks += 1;
                tokio::task::yield_now().await;
            }
        })
    };
    let mut receives = 0;
    while !traffic.is_finished() {
        let request = ReceiveRequest { max: 5, ..Default::default() };
        let got = broker.receive("old", None, request, WAIT).await.unwrap();
        assert_eq!(got.len(), 5);
        let leases: Vec<u64> = got.iter().filter_map(|m| m.lease).collect();
        broker.nack("old", None, &leases, Duration::ZERO).await.unwrap();
        receives += 1;
    }
    traffic.await.unwrap();
    peeker.abort();
    assert!(receives > 0);
    assert!(segment_files(dir.path()) < 10, "the old messages' segments were reclaimed");
}
