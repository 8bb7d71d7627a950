-- Stock-aware admission: live tokens are capped at ceil(unreserved stock × overbook), so a
-- nearly gone drop stops handing out tokens that cannot buy anything (see lua/admit.lua).
ALTER TABLE drops
    ADD COLUMN overbook DOUBLE PRECISION NOT NULL DEFAULT 1.5
        CHECK (overbook >= 1 AND overbook <= 100);
