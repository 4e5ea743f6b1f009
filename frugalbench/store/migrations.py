"""Versioned schema migrations. Append new ones; never edit one that has shipped."""
from __future__ import annotations

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
]


def latest_version() -> int:
    return MIGRATIONS[-1][0]
