//! Cursor pagination: `?limit=N&cursor=C`, newest first. The cursor is the last id seen,
//! so pages stay stable while new rows arrive (offsets would skip or repeat rows).

use crate::error::ApiError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// 1 to 100, 20 when absent.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Only some list endpoints filter by drop; others reject it.
    pub drop_id: Option<i64>,
}

pub struct Page {
    pub limit: i64,
    /// Rows with an id below this one (i64::MAX on the first page).
    pub before: i64,
}

impl PageQuery {
    pub fn page(&self) -> Result<Page, ApiError> {
        let limit = self.limit.unwrap_or(20);
        let mut fields = vq_core::domain::FieldErrors::new();
        if !(1..=100).contains(&limit) {
            fields.insert("limit".into(), "must be between 1 and 100".into());
        }
        let before = match &self.cursor {
            None => i64::MAX,
            Some(c) => match c.parse::<i64>() {
                Ok(v) if v > 0 => v,
                _ => {
                    fields.insert("cursor".into(), "is not a cursor this API returned".into());
                    0
                }
            },
        };
        if fields.is_empty() {
            Ok(Page { limit, before })
        } else {
            Err(ApiError::Validation(fields))
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Paged<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Builds a page from up to `limit + 1` rows fetched newest first.
pub fn paged<T>(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> i64) -> Paged<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| id(r).to_string())
    } else {
        None
    };
    Paged {
        items: rows,
        next_cursor,
    }
}
