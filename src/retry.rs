//! Retrying and time limits, shared by the server's backend calls (`service`) and by `fetch`:
//! [`Backoff`] (exponential, with jitter, bounded by a deadline) and [`within`] (one call under
//! a time limit, a `Timeout` error when it passes).
//!
//! Owns only the timing; which errors are worth another attempt is the caller's rule, given to
//! [`Backoff::new`]. Imports nothing but `error`.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use crate::error::{Error, ErrorKind, Result};

/// Waits between attempts: the first wait, doubled after each failure up to `max`, each
/// stretched by up to 25 % at random (so that many clients do not retry in step), and never past
/// the deadline.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    max: Duration,
    deadline: Instant,
    attempts: u32,
    retryable: fn(ErrorKind) -> bool,
}

impl Backoff {
    /// Starts with `first`, waits at most `max`, gives up before `deadline` would pass; retries
    /// the errors whose kind `retryable` accepts.
    pub fn new(
        first: Duration,
        max: Duration,
        deadline: Instant,
        retryable: fn(ErrorKind) -> bool,
    ) -> Backoff {
        Backoff {
            next: first,
            max,
            deadline,
            attempts: 0,
            retryable,
        }
    }

    /// The attempts that failed so far.
    pub fn failures(&self) -> u32 {
        self.attempts
    }

    /// The time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// After a failed attempt: `Ok((wait, error))` to try again after `wait`, or the final
    /// error: unchanged when it is not worth retrying, with the attempt count when the deadline
    /// would pass first.
    pub fn after(&mut self, e: Error) -> std::result::Result<(Duration, Error), Error> {
        self.attempts += 1;
        if !(self.retryable)(e.kind()) {
            return Err(e);
        }
        let jitter = rand::random::<f64>() * 0.25;
        let wait = self.next.mul_f64(1.0 + jitter);
        if Instant::now() + wait >= self.deadline {
            let n = self.attempts;
            return Err(Error::new(
                e.kind(),
                format!(
                    "{} (gave up after {n} attempt{}: the deadline would pass)",
                    e.message(),
                    if n == 1 { "" } else { "s" }
                ),
            ));
        }
        self.next = (self.next * 2).min(self.max);
        Ok((wait, e))
    }
}

/// Runs `fut` for at most `limit`; past it, a `Timeout` error saying that `who` did not answer.
pub async fn within<T>(
    limit: Duration,
    who: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorKind::Timeout,
            format!(
                "{who} did not answer within {}",
                humantime::format_duration(limit)
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Retries transient errors; waits from `first` ms up to `max` ms; the deadline is `left`
    /// from now.
    fn backoff(first: u64, max: u64, left: Duration) -> Backoff {
        Backoff::new(
            Duration::from_millis(first),
            Duration::from_millis(max),
            Instant::now() + left,
            ErrorKind::is_transient,
        )
    }

    #[test]
    fn doubles_up_to_the_cap_with_at_most_a_quarter_of_jitter() {
        let mut b = backoff(100, 400, Duration::from_secs(3600));
        let unavailable = || Error::new(ErrorKind::BackendUnavailable, "down");
        for base in [100u64, 200, 400, 400] {
            let (wait, e) = b.after(unavailable()).expect("retryable");
            assert_eq!(e.kind(), ErrorKind::BackendUnavailable);
            assert!(wait >= Duration::from_millis(base), "{wait:?} < {base} ms");
            assert!(
                wait <= Duration::from_millis(base * 5 / 4),
                "{wait:?} > {base} ms + 25 %"
            );
        }
        assert_eq!(b.failures(), 4);
    }

    #[test]
    fn a_final_error_passes_unchanged() {
        let mut b = backoff(1, 1, Duration::from_secs(60));
        let e = b
            .after(Error::new(ErrorKind::NotFound, "gone"))
            .unwrap_err();
        assert_eq!((e.kind(), e.message()), (ErrorKind::NotFound, "gone"));
        assert_eq!(b.failures(), 1);
    }

    #[test]
    fn gives_up_when_the_wait_would_pass_the_deadline() {
        let mut b = backoff(10_000, 10_000, Duration::from_secs(1));
        let e = b.after(Error::new(ErrorKind::Timeout, "slow")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert_eq!(
            e.message(),
            "slow (gave up after 1 attempt: the deadline would pass)"
        );
    }

    #[tokio::test]
    async fn within_turns_a_late_answer_into_a_timeout() {
        let late = within(Duration::from_millis(10), "the source", async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(late.kind(), ErrorKind::Timeout);
        assert_eq!(late.message(), "the source did not answer within 10ms");
        let on_time = within(Duration::from_secs(5), "the source", async { Ok(7) }).await;
        assert_eq!(on_time.unwrap(), 7);
    }
}
