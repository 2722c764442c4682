-- Labelled rows a model may learn from that it never served: the data its first version was trained on,
-- loaded with `cyclone register --history`. A retrain reads them with the labelled predictions; evaluation
-- never does, so they judge no version. A row is keyed by the SHA-256 of its time, its instance's model
-- features and its label (the JSON as jsonb prints it, so key order and spacing do not count): a row loaded
-- twice is stored once.
CREATE TABLE history (
    model_name text        NOT NULL,
    digest     bytea       NOT NULL,
    input      jsonb       NOT NULL,
    label      jsonb       NOT NULL,
    created_at timestamptz NOT NULL,
    source     text        NOT NULL,
    loaded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_name, digest)
);
CREATE INDEX history_model_time ON history (model_name, created_at);
