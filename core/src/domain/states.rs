//! The states a drop and its waiting room move through, as they travel between PostgreSQL,
//! the Redis `cfg` hash, the Lua scripts and the API. Each has one spelling on the wire
//! (snake_case), so a typo is a compile error instead of a silently wrong comparison.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Generates `as_str`, `Display` and `FromStr` from one table of spellings, so the wire
/// names cannot drift from serde's.
macro_rules! spelled {
    ($name:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $s),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = super::Invalid;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok($name::$variant),)+
                    other => Err(super::Invalid(format!(
                        "unknown {}: {other}",
                        stringify!($name)
                    ))),
                }
            }
        }
    };
}

/// What a manager set: stored in `drops.state` and mirrored into the Redis `cfg` hash.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, sqlx::Type, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
#[sqlx(type_name = "text", rename_all = "snake_case")]
pub enum DropState {
    Active,
    Paused,
    Closed,
}

spelled!(DropState { Active => "active", Paused => "paused", Closed => "closed" });

/// What a buyer sees: derived from the state, the clock and the stock (never stored).
/// scheduled → pre_queue → live ⇄ paused → sold_out / ended (closed by a manager).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Scheduled,
    PreQueue,
    Live,
    Paused,
    SoldOut,
    Ended,
}

spelled!(Phase {
    Scheduled => "scheduled",
    PreQueue => "pre_queue",
    Live => "live",
    Paused => "paused",
    SoldOut => "sold_out",
    Ended => "ended",
});

impl Phase {
    /// `opens_ms` is when the pre-queue opens, `starts_ms` when admission starts.
    pub fn of(
        state: DropState,
        remaining: i64,
        now_ms: i64,
        opens_ms: i64,
        starts_ms: i64,
    ) -> Self {
        match state {
            DropState::Closed => Phase::Ended,
            _ if remaining <= 0 => Phase::SoldOut,
            DropState::Paused => Phase::Paused,
            _ if now_ms < opens_ms => Phase::Scheduled,
            _ if now_ms < starts_ms => Phase::PreQueue,
            DropState::Active => Phase::Live,
        }
    }
}

/// The status of one admission tick (`admit.lua`'s first reply field, and the `status` of
/// the tick event it publishes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdmitStatus {
    Ok,
    /// No cfg: unknown to Redis (the admission loop drops it from the active set).
    NoDrop,
    /// cfg without a stock key: Redis lost state; the tick changed nothing.
    NeedsRebuild,
    Paused,
    Closed,
    NotStarted,
    /// Stock 0, but a live token or an unpaid reservation may still give units back.
    SoldOutPending,
    /// Stock 0, no live token, no unpaid reservation: nothing can come back.
    SoldOut,
}

spelled!(AdmitStatus {
    Ok => "ok",
    NoDrop => "no_drop",
    NeedsRebuild => "needs_rebuild",
    Paused => "paused",
    Closed => "closed",
    NotStarted => "not_started",
    SoldOutPending => "sold_out_pending",
    SoldOut => "sold_out",
});

impl AdmitStatus {
    /// The drop will never admit again: the admission loop stops ticking it.
    pub fn is_final(self) -> bool {
        matches!(self, AdmitStatus::Closed | AdmitStatus::NoDrop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + fmt::Debug + PartialEq + Serialize + FromStr + fmt::Display,
        T::Err: fmt::Debug,
    {
        for v in all {
            let wire = serde_json::to_string(v).unwrap();
            assert_eq!(wire, format!("\"{v}\""), "serde and Display agree");
            assert_eq!(v.to_string().parse::<T>().unwrap(), *v);
        }
    }

    #[test]
    fn spellings_agree_with_serde() {
        round_trips(DropState::ALL);
        round_trips(Phase::ALL);
        round_trips(AdmitStatus::ALL);
        assert!("Active".parse::<DropState>().is_err());
    }

    #[test]
    fn phase_follows_state_clock_and_stock() {
        use DropState::*;
        assert_eq!(Phase::of(Closed, 5, 0, 10, 20), Phase::Ended);
        assert_eq!(Phase::of(Active, 0, 30, 10, 20), Phase::SoldOut);
        assert_eq!(Phase::of(Paused, 5, 30, 10, 20), Phase::Paused);
        assert_eq!(Phase::of(Active, 5, 5, 10, 20), Phase::Scheduled);
        assert_eq!(Phase::of(Active, 5, 15, 10, 20), Phase::PreQueue);
        assert_eq!(Phase::of(Active, 5, 20, 10, 20), Phase::Live);
    }
}
