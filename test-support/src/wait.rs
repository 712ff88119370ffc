//! Waiting for a condition instead of sleeping: a test that sleeps "long enough" and then asserts
//! is slow on a quiet machine and wrong on a loaded one. These poll the condition until it holds
//! or a deadline passes, and then fail saying what was awaited.

use std::time::{Duration, Instant};

/// How often a condition is looked at.
const POLL: Duration = Duration::from_millis(5);

/// Polls `cond` until it gives a value, for at most `within`; panics naming `what` if it never
/// does.
pub fn wait_until<T>(what: &str, within: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(POLL);
    }
}

/// [`wait_until`] on tokio: the other tasks of the runtime run between looks. The deadline is in
/// real time, so that the wait also works with tokio's clock paused.
pub async fn wait_until_async<T>(what: &str, within: Duration, mut cond: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::task::yield_now().await;
    }
}

/// [`wait_until`] looking every `every` rather than every 5 ms: for conditions that cost a call
/// to a server each time (a LOCK re-sent until it is granted, as a client's re-poll would).
pub fn poll_until<T>(
    what: &str,
    within: Duration,
    every: Duration,
    mut cond: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = cond() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        std::thread::sleep(every);
    }
}
