//! SURVEYOR/RESPONDENT behaviour: collecting answers until the deadline, and the states
//! around a survey.

mod common;

use common::{assert_err, connected, recv_text, send, star, within};
use ferry_sp::{Error, Protocol, SockOpt};
use std::collections::BTreeSet;
use std::time::Duration;

/// Long enough for three local respondents to answer on a loaded machine.
const SURVEY_TIME: Duration = Duration::from_secs(2);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveyor_collects_answers_until_the_deadline_then_times_out_then_is_done() {
    let (surveyor, respondents) = star(Protocol::Surveyor, Protocol::Respondent, 3).await;
    surveyor.set(SockOpt::SurveyTime(SURVEY_TIME)).unwrap();

    send(&surveyor, "lunch?").await;
    for (i, r) in respondents.iter().enumerate() {
        assert_eq!(recv_text(r).await, "lunch?");
        send(r, format!("yes from {i}")).await;
    }
    let mut answers = BTreeSet::new();
    for _ in 0..3 {
        answers.insert(recv_text(&surveyor).await);
    }
    assert_eq!(answers, BTreeSet::from(["yes from 0".into(), "yes from 1".into(), "yes from 2".into()]));
    // No more answers: the survey's end ends the receive, though recv-timeout is infinite.
    surveyor.set(SockOpt::RecvTimeout(None)).unwrap();
    assert_err!(within("the end of the survey", surveyor.recv()).await, Error::Timeout);
    assert_err!(surveyor.recv().await, Error::BadState);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_to_an_expired_survey_is_dropped() {
    let (surveyor, respondent) = connected(Protocol::Surveyor, Protocol::Respondent).await;
    surveyor.set(SockOpt::SurveyTime(Duration::from_millis(100))).unwrap();
    send(&surveyor, "first").await;
    assert_eq!(recv_text(&respondent).await, "first");
    // Wait the survey out: a receive ends with it, and after it there is no survey.
    within("the end of the first survey", async { while !matches!(surveyor.recv().await, Err(Error::BadState)) {} })
        .await;

    send(&respondent, "late").await;
    surveyor.set(SockOpt::SurveyTime(SURVEY_TIME)).unwrap();
    send(&surveyor, "second").await;
    assert_eq!(recv_text(&respondent).await, "second");
    send(&respondent, "on time").await;
    // "late" went out first on the same pipe; had it been kept it would come first.
    assert_eq!(recv_text(&surveyor).await, "on time");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survey_states_without_a_survey() {
    let (surveyor, respondent) = connected(Protocol::Surveyor, Protocol::Respondent).await;
    assert_err!(surveyor.recv().await, Error::BadState);
    assert_err!(respondent.send("unasked").await, Error::BadState);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surveyor_contexts_run_their_own_surveys() {
    let (surveyor, respondent) = connected(Protocol::Surveyor, Protocol::Respondent).await;
    surveyor.set(SockOpt::SurveyTime(SURVEY_TIME)).unwrap();
    let (a, b) = (surveyor.context().unwrap(), surveyor.context().unwrap());
    a.send("survey a").await.unwrap();
    b.send("survey b").await.unwrap();
    // Answer b's survey first; each context gets only the answer to its own.
    let ctx = respondent.context().unwrap();
    let first = ctx.recv().await.unwrap();
    let second = respondent.recv().await.unwrap();
    respondent.send(format!("re: {}", common::text(&second))).await.unwrap();
    ctx.send(format!("re: {}", common::text(&first))).await.unwrap();
    assert_eq!(common::text(&a.recv().await.unwrap()), "re: survey a");
    assert_eq!(common::text(&b.recv().await.unwrap()), "re: survey b");
}
