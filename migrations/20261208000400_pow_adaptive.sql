-- The join's proof of work rises with join pressure up to this cap (0: it stays at
-- pow_difficulty, the floor). Drops created before keep their fixed difficulty.
ALTER TABLE drops
    ADD COLUMN pow_max_difficulty INT NOT NULL DEFAULT 0
        CONSTRAINT drops_pow_max_known CHECK (pow_max_difficulty BETWEEN 0 AND 32);
