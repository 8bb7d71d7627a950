//! lua/manage.lua: a manager's change to a drop's live configuration.

use super::{unexpected, Scripts};
use crate::keys::DropKeys;
use redis::aio::ConnectionLike;
use redis::RedisResult;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManageOutcome {
    Applied,
    /// Neither cfg nor stock: unknown to Redis. A drop PostgreSQL knows needs a rebuild.
    NoDrop,
    /// One of cfg and stock is gone: Redis lost state; nothing was written.
    NeedsRebuild,
}

impl Scripts {
    /// Writes `fields` to the drop's cfg hash, only if the drop's Redis state is whole.
    /// Never creates the stock key (drop creation and rebuild do).
    pub async fn manage<C: ConnectionLike + Send>(
        &self,
        conn: &mut C,
        k: &DropKeys,
        fields: &[(&str, String)],
    ) -> RedisResult<ManageOutcome> {
        if fields.is_empty() {
            return Err(unexpected("manage needs at least one field"));
        }
        let mut inv = self.manage.key(k.cfg());
        inv.key(k.stock());
        for (f, v) in fields {
            inv.arg(*f).arg(v);
        }
        let out: String = inv.invoke_async(conn).await?;
        Ok(match out.as_str() {
            "ok" => ManageOutcome::Applied,
            "no_drop" => ManageOutcome::NoDrop,
            "needs_rebuild" => ManageOutcome::NeedsRebuild,
            other => return Err(unexpected(other)),
        })
    }
}
