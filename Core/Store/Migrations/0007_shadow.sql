-- Shadow evaluation: a challenger scored beside the live version on every request, answering none. Its output
-- is stored on the served row (same id, same label), so each label joins both and the two losses are paired.
-- Plain nullable columns: adding them changes the catalogue only, not the rows (no rewrite of the table).
ALTER TABLE model DROP CONSTRAINT model_status_check;
ALTER TABLE model ADD CONSTRAINT model_status_check
    CHECK (status IN ('candidate', 'canary', 'shadow', 'live', 'retired', 'rejected'));

ALTER TABLE prediction
    ADD COLUMN shadow_version    text,
    ADD COLUMN shadow_prediction jsonb;
