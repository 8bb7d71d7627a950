//! What a buyer's client sends over the socket: every frame, answered in place.

use super::guard::CLOSE_SESSION_REVOKED;
use super::{Flow, Session};
use crate::drops::purchase::buy;
use crate::drops::wire::PurchaseBody;
use crate::error::ApiError;
use crate::messages::ServerMsg;
use crate::room::{ClientMsg, CLOSE_TOO_BIG};
use axum::extract::ws::Message;

impl Session {
    /// One frame from the client (close frames are handled by the caller).
    pub(super) async fn on_frame(
        &mut self,
        m: Option<Result<Message, axum::Error>>,
        out: &mut Vec<ServerMsg>,
    ) -> Flow {
        match m {
            Some(Ok(Message::Text(t))) => match self.charge(out) {
                Some(flow) => flow,
                None => self.on_client(t.as_str(), out).await,
            },
            Some(Ok(Message::Binary(_))) => {
                if let Some(flow) = self.charge(out) {
                    return flow;
                }
                out.push(ServerMsg::error(
                    "bad_message",
                    "binary frames are not supported; send JSON text",
                ));
                Flow::Continue
            }
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket read error");
                Flow::Close(CLOSE_TOO_BIG, "message too big or malformed frame")
            }
            _ => Flow::Continue,
        }
    }

    pub(super) async fn on_client(&mut self, text: &str, out: &mut Vec<ServerMsg>) -> Flow {
        match serde_json::from_str::<ClientMsg>(text) {
            Ok(ClientMsg::Ping) => {
                out.push(ServerMsg::Pong);
                Flow::Continue
            }
            Ok(ClientMsg::Status) => {
                self.cached_status(out);
                Flow::Continue
            }
            Ok(ClientMsg::Leave) => {
                match Box::pin(crate::room::leave(&self.st, self.id, self.user)).await {
                    Ok(_) => {
                        out.push(ServerMsg::Left);
                        Flow::Close(1000, "left the queue")
                    }
                    Err(e) => {
                        tracing::warn!(error = ?e, "leave failed");
                        out.push(ServerMsg::error("internal", "could not leave; try again"));
                        Flow::Continue
                    }
                }
            }
            Ok(ClientMsg::Purchase {
                token,
                quantity,
                request_id,
            }) => {
                // Boxed, like every rare Redis path of the session: an idle socket's task
                // then holds only the small futures it waits on (memory per socket).
                Box::pin(self.purchase(PurchaseBody { token, quantity }, request_id, out)).await
            }
            Err(e) => {
                out.push(ServerMsg::error(
                    "bad_message",
                    format!("expected {{\"type\": \"ping\" | \"status\" | \"leave\" | \"purchase\"}}: {e}"),
                ));
                Flow::Continue
            }
        }
    }

    /// A purchase on the socket: the very same `buy` as `POST .../purchase`, with the
    /// socket's session checked as HTTP checks the bearer (expired or revoked closes it).
    async fn purchase(
        &mut self,
        body: PurchaseBody,
        request_id: Option<String>,
        out: &mut Vec<ServerMsg>,
    ) -> Flow {
        if request_id
            .as_ref()
            .is_some_and(|r| r.len() > MAX_REQUEST_ID)
        {
            out.push(ServerMsg::error(
                "bad_message",
                format!("request_id: at most {MAX_REQUEST_ID} bytes"),
            ));
            return Flow::Continue;
        }
        if let Some(flow) = self.expiry_check() {
            return flow;
        }
        // The revocation is read in the purchase's own gate round trip, as on HTTP.
        let jti = self.auth.jti;
        out.push(
            match buy(
                &self.st,
                self.st.checkout.redis(),
                self.ip,
                self.id,
                self.user,
                Some(&jti),
                body,
            )
            .await
            {
                Ok(receipt) => ServerMsg::Purchased {
                    request_id,
                    receipt,
                },
                Err(ApiError::Unauthenticated {
                    code: "token_revoked",
                    ..
                }) => return Flow::Close(CLOSE_SESSION_REVOKED, "session revoked"),
                Err(e) => ServerMsg::purchase_rejected(request_id, &e),
            },
        );
        Flow::Continue
    }
}

/// Longest `request_id` echoed back.
const MAX_REQUEST_ID: usize = 64;
