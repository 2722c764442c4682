-- The evaluation store: every model version, every served prediction, and what the evaluator writes.

CREATE TABLE model (
    name            text        NOT NULL,
    version         text        NOT NULL,
    family          text        NOT NULL,
    task            text        NOT NULL CHECK (task IN ('regression', 'binary', 'multiclass')),
    status          text        NOT NULL CHECK (status IN ('candidate', 'canary', 'live', 'retired', 'rejected')),
    artifact        jsonb       NOT NULL,
    parent_version  text,
    training_window tstzrange,
    training_rows   bigint,
    holdout_metrics jsonb,
    image_digest    text,
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (name, version)
);

-- One row per served instance. The id is a UUIDv7 made by the predict process, so ids sort by time.
-- Partitioned by day on created_at: old days are dropped whole, windows scan few partitions.
CREATE TABLE prediction (
    id            uuid        NOT NULL,
    model_name    text        NOT NULL,
    model_version text        NOT NULL,
    input         jsonb       NOT NULL,
    prediction    jsonb       NOT NULL,
    key           text,
    label         jsonb,
    created_at    timestamptz NOT NULL,
    labeled_at    timestamptz,
    PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);

-- Rows outside every daily partition land here; cyclone_ensure_partitions moves them into their day.
CREATE TABLE prediction_default PARTITION OF prediction DEFAULT;

CREATE INDEX prediction_key ON prediction (key) WHERE key IS NOT NULL;
CREATE INDEX prediction_model_time ON prediction (model_name, model_version, created_at);
CREATE INDEX prediction_labeled ON prediction (model_name, labeled_at) WHERE label IS NOT NULL;

-- Performance metrics per model version and window.
CREATE TABLE metric (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_name    text             NOT NULL,
    model_version text             NOT NULL,
    name          text             NOT NULL,
    value         double precision,
    rows          bigint           NOT NULL,
    window_start  timestamptz,
    window_end    timestamptz,
    computed_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX metric_series ON metric (model_name, name, computed_at);

-- Input and prediction drift per feature, model version and window.
CREATE TABLE drift (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_name    text             NOT NULL,
    model_version text             NOT NULL,
    feature       text             NOT NULL,
    test          text             NOT NULL,
    statistic     double precision,
    p_value       double precision,
    threshold     double precision,
    drifted       boolean          NOT NULL,
    psi           double precision,
    rows          bigint           NOT NULL,
    window_start  timestamptz,
    window_end    timestamptz,
    computed_at   timestamptz      NOT NULL DEFAULT now()
);
CREATE INDEX drift_series ON drift (model_name, feature, computed_at);

-- The audit trail of the loop: retrain requested, started, rejected, image pushed, deployed, promoted...
CREATE TABLE event (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_name    text,
    model_version text,
    kind          text        NOT NULL,
    detail        jsonb       NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_time ON event (model_name, created_at);
