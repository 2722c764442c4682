-- Drift windows without re-reading the predictions' JSON. With every batch of predictions it commits, the
-- writer inserts one row per model version holding the batch's rows counted into the cells of the version's
-- DriftLayout (Core/Monitoring): cell numbers, the rows in each cell and, for numeric bins, the sum of their
-- values. A drift window is the sum of the rollups whose batches fall in it. Rollups of small batches are
-- merged later into blocks of a minute or less, closed once they hold a thousand rows (`compacted`), so a window
-- of a million rows adds up about a thousand rows' cells.
CREATE TABLE drift_rollup (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    model_name    text        NOT NULL,
    model_version text        NOT NULL,
    -- The DriftLayout fingerprint the cells are numbered by (NULL: no cells, only row and refusal counts).
    layout        bigint,
    first_at      timestamptz NOT NULL,
    last_at       timestamptz NOT NULL,
    rows          integer     NOT NULL,
    -- Requests predict refused (bad input) while it served this version, for the data-quality report.
    rejected      integer     NOT NULL DEFAULT 0,
    cells         integer[]   NOT NULL DEFAULT '{}',
    counts        integer[]   NOT NULL DEFAULT '{}',
    sums          float8[]    NOT NULL DEFAULT '{}',
    -- Categories the reference never saw: {"<column offset>:<category>": rows}, the commonest 20 per column.
    unseen        jsonb,
    compacted     boolean     NOT NULL DEFAULT false
);
CREATE INDEX drift_rollup_window ON drift_rollup (model_name, model_version, last_at);
CREATE INDEX drift_rollup_loose ON drift_rollup (last_at) WHERE NOT compacted;
