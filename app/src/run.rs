//! Running the built roles: one task per role, each watched by a reporter that sends the
//! role's exit to the root and then drops its sender. The root reports every exit as it
//! comes and is done when `recv()` returns `None`: every role has ended and let go.

use crate::App;
use std::future::Future;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinError;

type Outcome = Result<anyhow::Result<()>, JoinError>;

impl App {
    /// Runs every built role until the shutdown fires (or one role fails, which stops the
    /// others), then waits for all of them. Returns the first role's error, if any.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let (exits, mut exited) = mpsc::unbounded_channel::<(&'static str, Outcome)>();
        let stop = self.trigger.subscribe();
        if let Some(api) = self.api {
            spawn_role("api", api.run_until_stopped(), &exits);
        }
        if let Some(a) = self.admission {
            let tick = Duration::from_millis(self.settings.admission.tick_ms);
            let stop = stop.clone();
            spawn_role(
                "admission",
                async move {
                    a.run(tick, stop).await;
                    Ok(())
                },
                &exits,
            );
        }
        if let Some(w) = self.worker {
            let stop = stop.clone();
            spawn_role(
                "worker",
                async move {
                    w.run(stop).await;
                    Ok(())
                },
                &exits,
            );
        }
        if let Some(d) = self.webhooks {
            let stop = stop.clone();
            spawn_role(
                "webhooks",
                async move {
                    d.run(stop).await;
                    Ok(())
                },
                &exits,
            );
        }
        if let Some(s) = self.scheduler {
            let stop = stop.clone();
            spawn_role(
                "scheduler",
                async move {
                    s.run(stop).await;
                    Ok(())
                },
                &exits,
            );
        }
        drop(exits);
        let (trigger, mut outer) = (self.trigger.clone(), self.outer);
        let forward = tokio::spawn(async move {
            outer.wait().await;
            trigger.fire();
        });
        let mut first_error = None;
        while let Some((role, outcome)) = exited.recv().await {
            if let Some(e) = report_exit(role, outcome) {
                self.trigger.fire();
                first_error.get_or_insert(e);
            }
        }
        forward.abort();
        first_error.map_or(Ok(()), Err)
    }
}

/// Spawns the role and a reporter holding a clone of the exit sender until the role ends.
fn spawn_role<F>(role: &'static str, fut: F, exits: &mpsc::UnboundedSender<(&'static str, Outcome)>)
where
    F: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let task = tokio::spawn(fut);
    let exits = exits.clone();
    tokio::spawn(async move {
        let _ = exits.send((role, task.await));
    });
}

/// Logs how a role ended; returns the error when it did not end cleanly.
fn report_exit(role: &'static str, outcome: Outcome) -> Option<anyhow::Error> {
    match outcome {
        Ok(Ok(())) => {
            tracing::info!(role, "role exited");
            None
        }
        Ok(Err(e)) => {
            tracing::error!(role, error.cause_chain = ?e, error.message = %e, "role failed");
            Some(e.context(format!("{role} failed")))
        }
        Err(e) => {
            tracing::error!(role, error.cause_chain = ?e, error.message = %e, "role task panicked or was cancelled");
            Some(anyhow::anyhow!("{role} task did not finish: {e}"))
        }
    }
}
