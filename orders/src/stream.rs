//! The order stream's consumer group. The api creates it when it mirrors a drop into Redis
//! (so a reservation never lands in a stream without a group); the worker reads through it.

/// Consumer group every worker joins.
pub const GROUP: &str = "vq-workers";

/// Creates the group reading from the stream's start; an existing group is fine.
pub async fn ensure_group<C: redis::aio::ConnectionLike + Send>(
    conn: &mut C,
    key: &str,
) -> redis::RedisResult<()> {
    let r: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}
