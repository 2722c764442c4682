-- What the evaluator writes beside each drift verdict: the data-quality counts of the window, and a
-- detail document (PSI stability, unseen categories, why there was no verdict).
ALTER TABLE drift
    ADD COLUMN missing                bigint,
    ADD COLUMN invalid                bigint,
    ADD COLUMN missing_rate           double precision,
    ADD COLUMN reference_missing_rate double precision,
    ADD COLUMN out_of_range           bigint,
    ADD COLUMN unseen                 bigint,
    ADD COLUMN detail                 jsonb NOT NULL DEFAULT '{}';

-- Time series per model version, as /api/metrics and /api/drift read them.
CREATE INDEX metric_version_series ON metric (model_name, model_version, computed_at);
CREATE INDEX drift_version_series ON drift (model_name, model_version, computed_at);

-- The retrain state of a model: its latest retrain and deploy events.
CREATE INDEX event_kind ON event (model_name, kind, created_at);
