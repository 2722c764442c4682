-- Labelled rows a model may learn from that it never served: the data its first version was trained on,
-- loaded with `cyclone register --history`. A retrain reads them with the labelled predictions; evaluation
-- never does, so they judge no version. A row is keyed by the file it came from (its SHA-256) and its line,
-- so loading a file again adds nothing.
CREATE TABLE history (
    model_name text        NOT NULL,
    source     text        NOT NULL,
    line       integer     NOT NULL,
    input      jsonb       NOT NULL,
    label      jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, source, line)
);
CREATE INDEX history_model_time ON history (model_name, created_at);
