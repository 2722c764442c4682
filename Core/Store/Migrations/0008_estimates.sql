-- Performance estimated before labels (CBPE, DLE): stored as `metric` rows named `estimated_<metric>`, with the
-- estimate's band. Plain nullable columns: adding them changes the catalogue only, not the rows.
ALTER TABLE metric
    ADD COLUMN lower double precision,
    ADD COLUMN upper double precision;
