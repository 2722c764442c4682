-- Shadow evaluation: a challenger scored beside the live version on every request, answering none. Its output
-- is stored on the served row (same id, same label), so each label joins both and the two losses are paired.
ALTER TABLE model DROP CONSTRAINT model_status_check;
ALTER TABLE model ADD CONSTRAINT model_status_check
    CHECK (status IN ('candidate', 'canary', 'shadow', 'live', 'retired', 'rejected'));

ALTER TABLE prediction
    ADD COLUMN shadow_version    text,
    ADD COLUMN shadow_prediction jsonb,
    ADD COLUMN shadow_value_number float8
        GENERATED ALWAYS AS (CASE WHEN jsonb_typeof(shadow_prediction -> 'value') = 'number'
                                  THEN (shadow_prediction -> 'value')::float8 END) STORED;

-- The paired rows of a shadow, in the order the verdict reads them.
CREATE INDEX prediction_shadow ON prediction (model_name, shadow_version, created_at, id)
    WHERE shadow_version IS NOT NULL AND label IS NOT NULL;
