//! A bound on concurrent decode and analysis work: at most `concurrency` jobs run at once (each on a blocking
//! thread) and at most `queue` wait for a place; past that a job is refused as busy, so a burst queues for a while
//! and then sheds load instead of exhausting memory.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;

/// Why a job did not run to its end.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkError {
    #[error("the server is busy: too many images are being analysed")]
    Busy,
    #[error("the analysis failed unexpectedly")]
    Failed,
}

/// The bound, shared by every front door of one process.
#[derive(Clone, Debug)]
pub struct WorkPool {
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl Default for WorkPool {
    /// As many jobs at once as there are cores, and four times that waiting.
    fn default() -> Self {
        WorkPool::sized(None, None)
    }
}

/// Takes a place in the queue, and gives it back however the wait ends (also when the waiting future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkPool {
    /// `concurrency` jobs at once (default: the number of cores) and `queue` waiting (default: four times that).
    pub fn sized(concurrency: Option<usize>, queue: Option<usize>) -> WorkPool {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let concurrency = concurrency.unwrap_or(cores).max(1);
        WorkPool::new(concurrency, queue.unwrap_or(4 * concurrency))
    }

    pub fn new(concurrency: usize, max_waiting: usize) -> WorkPool {
        WorkPool {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    /// Runs `job` on a blocking thread once a place is free. A panic in the job is reported as `Failed` (the
    /// process goes on).
    pub async fn run<T, F>(&self, job: F) -> Result<T, WorkError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(WorkError::Busy);
                }
                let _place = Waiting(&self.waiting);
                self.permits
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| WorkError::Failed)?
            }
        };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "an analysis job panicked");
            WorkError::Failed
        })
    }

    /// Jobs waiting for a place now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_at_most_concurrency_and_refuses_past_the_queue() {
        let pool = WorkPool::new(1, 2);
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut jobs = Vec::new();
        for _ in 0..3 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            jobs.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(150));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        // One runs, two wait: the queue is full, a fourth is refused at once.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(pool.waiting(), 2);
        assert_eq!(pool.run(|| ()).await, Err(WorkError::Busy));
        for j in jobs {
            assert_eq!(j.await.unwrap(), Ok(()));
        }
        assert_eq!(peak.load(Ordering::SeqCst), 1);
        assert_eq!(pool.waiting(), 0);
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_frees_its_place() {
        let pool = WorkPool::new(1, 0);
        assert_eq!(
            pool.run(|| -> u8 { panic!("boom") }).await,
            Err(WorkError::Failed)
        );
        assert_eq!(pool.run(|| 1).await, Ok(1));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_waiter_gives_its_place_back() {
        let pool = WorkPool::new(1, 1);
        let p = pool.clone();
        let busy = tokio::spawn(async move {
            p.run(|| std::thread::sleep(Duration::from_millis(200)))
                .await
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        let waiter = tokio::time::timeout(Duration::from_millis(20), pool.run(|| ())).await;
        assert!(waiter.is_err(), "timed out while waiting");
        assert_eq!(pool.waiting(), 0);
        busy.await.unwrap().unwrap();
    }
}
