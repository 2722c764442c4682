-- The partition function's one definition. Change it here, never in a migration: the migrator creates it anew
-- after the migrations, in every database whose schema this build knows (not in one a newer build migrated).
-- Migrations 0002, 0005 and 0006 hold its earlier versions, as applied.
--
-- Makes the daily partitions of `prediction` from yesterday to `ahead_days` ahead, and the days of any rows
-- waiting in the default partition (moved into their day, every column kept); with `retain_days`, drops the
-- days older than that. One caller at a time (an advisory lock).
CREATE OR REPLACE FUNCTION cyclone_ensure_partitions(ahead_days integer DEFAULT 7, retain_days integer DEFAULT NULL)
RETURNS TABLE (action text, partition_name text)
LANGUAGE plpgsql AS $$
DECLARE
    today  date := (now() AT TIME ZONE 'UTC')::date;
    day    date;
    lo     timestamptz;
    hi     timestamptz;
    expired record;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('cyclone_ensure_partitions'));
    FOR day IN
        SELECT d::date FROM generate_series(today - 1, today + ahead_days, interval '1 day') AS d
        UNION
        SELECT DISTINCT (created_at AT TIME ZONE 'UTC')::date FROM prediction_default
        ORDER BY 1
    LOOP
        partition_name := 'prediction_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(partition_name) IS NOT NULL;
        CONTINUE WHEN retain_days IS NOT NULL AND day < today - retain_days;
        lo := day::timestamp AT TIME ZONE 'UTC';
        hi := (day + 1)::timestamp AT TIME ZONE 'UTC';
        -- A new partition may not overlap rows in the default partition: take them out, then put them back.
        CREATE TEMP TABLE IF NOT EXISTS cyclone_moving (LIKE prediction) ON COMMIT DROP;
        WITH gone AS (DELETE FROM prediction_default WHERE created_at >= lo AND created_at < hi RETURNING *)
        INSERT INTO cyclone_moving SELECT * FROM gone;
        EXECUTE format('CREATE TABLE %I PARTITION OF prediction FOR VALUES FROM (%L) TO (%L)',
                       partition_name, lo, hi);
        INSERT INTO prediction (id, model_name, model_version, input, prediction, key, label, created_at, labeled_at,
                                latency_ms, shadow_version, shadow_prediction)
        SELECT id, model_name, model_version, input, prediction, key, label, created_at, labeled_at, latency_ms,
               shadow_version, shadow_prediction
        FROM cyclone_moving;
        TRUNCATE cyclone_moving;
        action := 'created';
        RETURN NEXT;
    END LOOP;

    IF retain_days IS NOT NULL THEN
        FOR expired IN
            SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            WHERE i.inhparent = 'prediction'::regclass AND c.relname ~ '^prediction_p[0-9]{8}$'
              AND to_date(substr(c.relname, 13), 'YYYYMMDD') < today - retain_days
            ORDER BY c.relname
        LOOP
            EXECUTE format('DROP TABLE %I', expired.relname);
            action := 'dropped';
            partition_name := expired.relname;
            RETURN NEXT;
        END LOOP;
        DELETE FROM prediction_default WHERE created_at < (today - retain_days)::timestamp AT TIME ZONE 'UTC';
    END IF;
END
$$;
