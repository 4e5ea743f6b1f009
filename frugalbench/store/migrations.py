"""Versioned schema migrations. Append new ones; never edit one that has shipped."""
from __future__ import annotations

TRAININGS_MIGRATION_SQL = """
CREATE TABLE IF NOT EXISTS trainings (
    training_id          VARCHAR PRIMARY KEY,
    created_at           TIMESTAMP NOT NULL,
    submission           VARCHAR NOT NULL,
    source_submission    VARCHAR,
    benchmark            VARCHAR NOT NULL,
    benchmark_sha256     VARCHAR,
    protocol_version     INTEGER,
    subset_id            VARCHAR NOT NULL,
    images               INTEGER NOT NULL,
    images_sha256        VARCHAR NOT NULL,
    annotation           VARCHAR NOT NULL,
    labelled_pixels      BIGINT,
    annotator_seconds    DOUBLE,
    seed                 INTEGER NOT NULL,
    iterations           INTEGER NOT NULL,
    batch_size           INTEGER NOT NULL,
    wall_seconds         DOUBLE,
    cpu_seconds          DOUBLE,
    peak_rss_mb          DOUBLE,
    energy_joules        DOUBLE,
    energy_method        VARCHAR,
    energy_measured      BOOLEAN,
    device               VARCHAR,
    hardware_fingerprint VARCHAR,
    config_sha256        VARCHAR,
    checkpoint_sha256    VARCHAR NOT NULL,
    verified             BOOLEAN NOT NULL,
    document             JSON NOT NULL
);
CREATE INDEX IF NOT EXISTS trainings_checkpoint ON trainings (checkpoint_sha256);
"""

# Runs stored before it get the rule of frugalbench.store.runs.compute_trust and
# measurement_protocol_version: compute is trusted unless compute.trusted is false or the run ran
# submission code (custom_code); a successful run that records no measurement protocol was measured
# under v1. Later runs get the columns from run_row.
TRUST_MIGRATION_SQL = """
ALTER TABLE runs ADD COLUMN compute_trusted BOOLEAN;
ALTER TABLE runs ADD COLUMN compute_untrusted_reason VARCHAR;
ALTER TABLE runs ADD COLUMN measurement_protocol_version INTEGER;
UPDATE runs SET
    compute_trusted = coalesce(CASE WHEN json_type(document, '$.compute.trusted') = 'BOOLEAN'
                                    THEN CAST(document->>'$.compute.trusted' AS BOOLEAN) END, true)
                      AND NOT coalesce(custom_code, false),
    measurement_protocol_version = coalesce(
        CASE WHEN json_type(document, '$.measurement_protocol.protocol_version') = 'UBIGINT'
                  AND TRY_CAST(document->>'$.measurement_protocol.protocol_version' AS INTEGER) >= 1
             THEN TRY_CAST(document->>'$.measurement_protocol.protocol_version' AS INTEGER) END,
        CASE WHEN status = 'ok' THEN 1 END);
UPDATE runs SET compute_untrusted_reason = CASE WHEN compute_trusted THEN NULL ELSE coalesce(
    nullif(CASE WHEN json_type(document, '$.compute.untrusted_reason') = 'VARCHAR'
                THEN document->>'$.compute.untrusted_reason' END, ''),
    CASE WHEN coalesce(custom_code, false)
         THEN 'the submission ran its own code (custom_imports) in the model process where its params and '
              || 'MACs were counted (stored before compute.trusted was recorded): shown, never ranked'
         ELSE 'compute.trusted is false (no reason stored)' END) END;
CREATE OR REPLACE VIEW leaderboard_runs AS
SELECT run_id, created_at, status, failure_reason, submission, submission_name, technique, parent,
       benchmark, protocol_version, split, num_images, miou, macc, aacc, params,
       CAST(document->>'$.compute.macs' AS DOUBLE)            AS macs,
       CAST(document->>'$.compute.flops' AS DOUBLE)           AS flops,
       CAST(document->>'$.latency.median_ms' AS DOUBLE)       AS latency_ms,
       CAST(document->>'$.latency.p90_ms' AS DOUBLE)          AS latency_p90_ms,
       CAST(document->>'$.memory.peak_rss_mb' AS DOUBLE)      AS peak_rss_mb,
       CAST(document->>'$.energy.joules_per_image' AS DOUBLE) AS energy_joules_per_image,
       document->>'$.energy.method'                           AS energy_method,
       CAST(document->>'$.energy.measured' AS BOOLEAN)        AS energy_measured,
       CAST(document->>'$.accuracy.miou_ci[0]' AS DOUBLE)     AS miou_ci_low,
       CAST(document->>'$.accuracy.miou_ci[1]' AS DOUBLE)     AS miou_ci_high,
       CAST(document->>'$.training.verified' AS BOOLEAN)      AS budget_verified,
       declared_train_images, declared_annotation, custom_code, device, hardware_fingerprint, run_key,
       CAST(document->>'$.synthetic' AS BOOLEAN)              AS synthetic,
       compute_trusted, compute_untrusted_reason, measurement_protocol_version
FROM runs;
"""

MIGRATIONS: list[tuple[int, str, str]] = [
    (1, 'runs, per-class scores, per-image areas, measurements', """
    CREATE TABLE runs (
        run_id               VARCHAR PRIMARY KEY,
        created_at           TIMESTAMP NOT NULL,
        status               VARCHAR NOT NULL CHECK (status IN ('ok', 'failed')),
        failure_reason       VARCHAR,
        submission           VARCHAR NOT NULL,
        submission_name      VARCHAR,
        technique            VARCHAR,
        parent               VARCHAR,
        benchmark            VARCHAR NOT NULL,
        benchmark_sha256     VARCHAR,
        protocol_version     INTEGER,
        split                VARCHAR,
        num_images           INTEGER,
        miou                 DOUBLE,
        macc                 DOUBLE,
        aacc                 DOUBLE,
        params               BIGINT,
        checkpoint_sha256    VARCHAR,
        config_sha256        VARCHAR,
        custom_code          BOOLEAN,
        declared_train_images INTEGER,
        declared_annotation  VARCHAR,
        device               VARCHAR,
        hardware_fingerprint VARCHAR,
        run_key              VARCHAR,
        document             JSON NOT NULL
    );
    CREATE INDEX runs_key ON runs (run_key);
    CREATE TABLE class_scores (
        run_id      VARCHAR NOT NULL,
        class_index INTEGER NOT NULL,
        class_name  VARCHAR NOT NULL,
        iou         DOUBLE,
        acc         DOUBLE
    );
    CREATE TABLE image_areas (
        run_id      VARCHAR NOT NULL,
        image_index INTEGER NOT NULL,
        image       VARCHAR NOT NULL,
        intersect_  DOUBLE[] NOT NULL,
        union_      DOUBLE[] NOT NULL,
        pred        DOUBLE[] NOT NULL,
        label       DOUBLE[] NOT NULL
    );
    CREATE TABLE measurements (
        run_id             VARCHAR NOT NULL,
        name               VARCHAR NOT NULL,
        value              DOUBLE,
        unit               VARCHAR NOT NULL,
        method             VARCHAR NOT NULL,
        tool_version       VARCHAR,
        measured           BOOLEAN NOT NULL,
        unavailable_reason VARCHAR,
        details            JSON
    );
    """),
    (2, 'pytest-benchmark reports; flat leaderboard view of runs', """
    CREATE TABLE perf_benchmarks (
        report_id    VARCHAR NOT NULL,
        ingested_at  TIMESTAMP NOT NULL,
        source_file  VARCHAR NOT NULL,
        name         VARCHAR NOT NULL,
        fullname     VARCHAR,
        bench_group  VARCHAR,
        min_s        DOUBLE,
        max_s        DOUBLE,
        mean_s       DOUBLE,
        median_s     DOUBLE,
        stddev_s     DOUBLE,
        iqr_s        DOUBLE,
        ops          DOUBLE,
        rounds       BIGINT,
        iterations   BIGINT,
        params       JSON,
        extra_info   JSON,
        machine_info JSON,
        commit_info  JSON,
        run_datetime VARCHAR,
        pytest_benchmark_version VARCHAR
    );
    CREATE VIEW leaderboard_runs AS
    SELECT run_id, created_at, status, failure_reason, submission, submission_name, technique, parent,
           benchmark, protocol_version, split, num_images, miou, macc, aacc, params,
           CAST(document->>'$.compute.macs' AS DOUBLE)            AS macs,
           CAST(document->>'$.compute.flops' AS DOUBLE)           AS flops,
           CAST(document->>'$.latency.median_ms' AS DOUBLE)       AS latency_ms,
           CAST(document->>'$.latency.p90_ms' AS DOUBLE)          AS latency_p90_ms,
           CAST(document->>'$.memory.peak_rss_mb' AS DOUBLE)      AS peak_rss_mb,
           CAST(document->>'$.energy.joules_per_image' AS DOUBLE) AS energy_joules_per_image,
           document->>'$.energy.method'                           AS energy_method,
           CAST(document->>'$.energy.measured' AS BOOLEAN)        AS energy_measured,
           CAST(document->>'$.accuracy.miou_ci[0]' AS DOUBLE)     AS miou_ci_low,
           CAST(document->>'$.accuracy.miou_ci[1]' AS DOUBLE)     AS miou_ci_high,
           CAST(document->>'$.training.verified' AS BOOLEAN)      AS budget_verified,
           declared_train_images, declared_annotation, custom_code, device, hardware_fingerprint, run_key,
           CAST(document->>'$.synthetic' AS BOOLEAN)              AS synthetic
    FROM runs;
    """),
    (3, 'trainings: verified training runs (budget, schedule, measurements)', TRAININGS_MIGRATION_SQL),
    (4, 'runs: compute trust and measurement protocol version as typed columns', TRUST_MIGRATION_SQL),
    # issue 17: the platform's submission queue (frugalbench.platform.queue)
    (5, 'submission_queue: submitted entries and their states', """
    CREATE TABLE submission_queue (
        entry_id      VARCHAR PRIMARY KEY,
        seq           BIGINT NOT NULL,
        content_hash  VARCHAR NOT NULL,
        name          VARCHAR,
        benchmark     VARCHAR NOT NULL,
        state         VARCHAR NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        attempts      INTEGER NOT NULL,
        node          VARCHAR,
        submitted_at  TIMESTAMP NOT NULL,
        started_at    TIMESTAMP,
        finished_at   TIMESTAMP,
        updated_at    TIMESTAMP NOT NULL,
        run_id        VARCHAR,
        reason        VARCHAR
    );
    """),
    # issue 19: budget-accuracy curves of cascades (frugalbench.cascades.store)
    (6, 'cascade_curves: fitted budget-mIoU curves of cascades', """
    CREATE TABLE cascade_curves (
        curve_id    VARCHAR PRIMARY KEY,
        created_at  TIMESTAMP NOT NULL,
        cascade     VARCHAR NOT NULL,
        benchmark   VARCHAR NOT NULL,
        resource    VARCHAR NOT NULL,
        document    JSON NOT NULL
    );
    """),
]


def latest_version() -> int:
    return MIGRATIONS[-1][0]
