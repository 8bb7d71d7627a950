-- Proof of work at join: leading zero bits a join's solution needs; 0 switches it off.
ALTER TABLE drops
    ADD COLUMN pow_difficulty INTEGER NOT NULL DEFAULT 0
        CHECK (pow_difficulty BETWEEN 0 AND 32);
