//! The hub's ear: one pub/sub connection per api node, subscribed to every drop's event
//! channel and to the account-events channel; each message goes to `Hub::dispatch*`.
//! Arrows: Redis → here → `Hub`.

use super::Hub;
use futures::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use vq_core::{Keys, Shutdown};

impl Hub {
    /// Listens to every drop's channel until shutdown, reconnecting after Redis errors (to
    /// the next of `clients`: on a cluster any node hears every PUBLISH). Connections
    /// re-read their exact rank periodically, so a missed message only delays.
    pub async fn run(
        self: Arc<Self>,
        clients: Vec<redis::Client>,
        keys: Keys,
        mut shutdown: Shutdown,
    ) {
        let pattern = keys.events_pattern();
        let accounts = keys.user_events();
        if clients.is_empty() {
            tracing::error!("no Redis node to subscribe to: rooms get no pushes");
            return;
        }
        let mut attempt = 0usize;
        while !shutdown.is_fired() {
            let client = &clients[attempt % clients.len()];
            attempt += 1;
            match client.get_async_pubsub().await {
                Ok(mut ps) => {
                    let subscribed = match ps.psubscribe(&pattern).await {
                        Ok(()) => ps.subscribe(&accounts).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = subscribed {
                        tracing::warn!(error = %e, "psubscribe failed");
                    } else {
                        let mut messages = ps.on_message();
                        loop {
                            tokio::select! {
                                _ = shutdown.wait() => return,
                                m = messages.next() => match m {
                                    Some(m) if m.get_channel_name() == accounts => {
                                        self.dispatch_users(m.get_payload_bytes());
                                    }
                                    Some(m) => {
                                        if let Some(drop) = keys.drop_of_channel(m.get_channel_name()) {
                                            self.dispatch(drop, m.get_payload_bytes());
                                        }
                                    }
                                    None => break,
                                },
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "event subscription failed"),
            }
            tokio::select! {
                _ = shutdown.wait() => return,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
}
