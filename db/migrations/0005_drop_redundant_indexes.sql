-- 0002's covering indexes on first_solved_at and last_solved_at serve every query the two plain
-- ones from 0001 served; each extra index costs every item write.
DROP INDEX IF EXISTS item_first_solved_idx;
DROP INDEX IF EXISTS item_last_solved_idx;
