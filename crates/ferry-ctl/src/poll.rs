//! One poll loop for every "wait until" of the commands: look, stop when
//! done, give up past a deadline, sleep, look again.

use std::future::Future;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

/// Calls `look` every `interval` until it breaks with a value (`Ok`), or
/// until a look that does not break ends after `deadline` (`Err` with what
/// that last look saw, for the timeout message). The first look happens at
/// once, and the last one after the deadline, so a condition met just in
/// time is not reported as a timeout.
pub async fn poll_until<T, Pending, F, Fut>(
    deadline: Instant,
    interval: Duration,
    mut look: F,
) -> Result<T, Pending>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ControlFlow<T, Pending>>,
{
    loop {
        match look().await {
            ControlFlow::Break(done) => return Ok(done),
            ControlFlow::Continue(pending) if Instant::now() > deadline => return Err(pending),
            ControlFlow::Continue(_) => tokio::time::sleep(interval).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stops_at_the_first_break() {
        let mut n = 0;
        let r: Result<u32, ()> = poll_until(
            Instant::now() + Duration::from_secs(5),
            Duration::from_millis(1),
            || {
                n += 1;
                let n = n;
                async move {
                    if n == 3 {
                        ControlFlow::Break(n)
                    } else {
                        ControlFlow::Continue(())
                    }
                }
            },
        )
        .await;
        assert_eq!(r, Ok(3));
    }

    #[tokio::test]
    async fn past_the_deadline_returns_the_last_pending_look() {
        let mut n = 0;
        let r: Result<(), u32> = poll_until(
            Instant::now() + Duration::from_millis(20),
            Duration::from_millis(5),
            || {
                n += 1;
                let n = n;
                async move { ControlFlow::Continue(n) }
            },
        )
        .await;
        let last = r.expect_err("never breaks");
        assert!(last >= 2, "looked {last} times");
    }
}
