//! More of the harness: the pub/sub events channel and the calls of the smaller scripts
//! (restock, settle, manage, touch), so env.rs stays about the drop and the main calls.

use crate::env::Env;
use futures::StreamExt;
use redis::aio::PubSub;
use serde_json::Value as Json;
use std::time::Duration;
use vq_core::domain::UserId;
use vq_core::scripts::{ManageOutcome, Restock, RestockOutcome};

/// Published on the events channel to mark "everything before this has been delivered".
const MARKER: &str = "__test_marker__";

impl Env {
    /// Gives back `n` units of order `order_id` (bought by `u` with `token`).
    pub(crate) async fn restock(
        &mut self,
        order_id: i64,
        u: UserId,
        n: i32,
        token: &str,
    ) -> RestockOutcome {
        let r = Restock {
            order_id,
            user: u.0,
            quantity: n,
            token: token.to_string(),
        };
        self.scripts
            .restock_checked(&mut self.conn, &self.k, &r)
            .await
            .expect("restock.lua")
    }

    pub(crate) async fn settle(&mut self, token: &str) -> bool {
        self.scripts
            .settle_reservation(&mut self.conn, &self.k, token)
            .await
            .expect("settle")
    }

    pub(crate) async fn manage(&mut self, fields: &[(&str, &str)]) -> ManageOutcome {
        let fields: Vec<(&str, String)> = fields.iter().map(|(f, v)| (*f, v.to_string())).collect();
        self.scripts
            .manage(&mut self.conn, &self.k, &fields)
            .await
            .expect("manage.lua")
    }

    pub(crate) async fn touch(&mut self, u: UserId) -> bool {
        self.scripts
            .touch(&mut self.conn, &self.k, u, &self.clock)
            .await
            .expect("touch.lua")
    }

    pub(crate) async fn cfg_field(&mut self, field: &str) -> Option<String> {
        self.q(redis::cmd("HGET").arg(self.k.cfg()).arg(field))
            .await
    }

    pub(crate) async fn exists(&mut self, key: String) -> bool {
        self.q(redis::cmd("EXISTS").arg(key)).await
    }

    /// A separate connection subscribed to the drop's events channel.
    pub(crate) async fn subscribe(&self) -> PubSub {
        let mut ps = self.client.get_async_pubsub().await.expect("pubsub");
        ps.subscribe(self.k.events()).await.expect("subscribe");
        ps
    }

    /// Every event published so far: publishes a marker and collects messages up to it.
    pub(crate) async fn events(&mut self, ps: &mut PubSub) -> Vec<Json> {
        let _: i64 = self
            .q(redis::cmd("PUBLISH").arg(self.k.events()).arg(MARKER))
            .await;
        let mut out = Vec::new();
        let mut stream = ps.on_message();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), stream.next())
                .await
                .expect("event within 10 s")
                .expect("pubsub stream open");
            let payload: String = msg.get_payload().expect("text payload");
            if payload == MARKER {
                return out;
            }
            out.push(serde_json::from_str(&payload).expect("event is JSON"));
        }
    }
}
