"""Ranking stored runs: evaluation documents from the store -> RunRecords -> frugalbench.scores.

References come from the benchmark file (so a score never depends on which other runs are
stored) unless the caller overrides one. Only the newest run per idempotency key counts.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from frugalbench.benchmarks import load_benchmark
from frugalbench.documents import get_path
from frugalbench.errors import BenchmarkError
from frugalbench.scores import RunRecord, get_resource, parse_references, parse_tracks, rank_runs, ranked_value
from frugalbench.store import connect, list_run_documents
from frugalbench.store.runs import compute_trust, measurement_protocol_version




def budget_state(training: dict[str, Any]) -> str:
    """'verified', 'recorded' or 'declared' (``training.state``; older runs: ``training.verified``);
    a state that claims a record without one is declared."""
    state = training.get('state') or ('verified' if training.get('verified') else 'declared')
    if state not in ('verified', 'recorded') or not training.get('record'):
        return 'declared'
    return state


def training_figures(document: dict[str, Any]) -> tuple[dict[str, float | None], str | None, str]:
    """Training-budget resources, the annotation type, and the budget state (see ``budget_state``)."""
    training = document.get('training') or {}
    record = training.get('record') or {}
    state = budget_state(training)
    if state != 'declared':
        return ({'train_images': record.get('images'), 'annotation_seconds': record.get('annotator_seconds'),
                 'train_seconds': record.get('wall_seconds'),
                 'train_energy_joules': record.get('energy_joules')},
                record.get('annotation'), state)
    declared = training.get('declared') or {}
    return {'train_images': declared.get('images')}, declared.get('annotation'), 'declared'


def record_from_document(document: dict[str, Any]) -> RunRecord:
    """The scoring view of one evaluation document."""
    training, annotation, state = training_figures(document)
    trusted, untrusted_reason = compute_trust(document)
    interval = get_path(document, 'accuracy.miou_ci')
    resources = {
        'params': get_path(document, 'compute.params'), 'macs': get_path(document, 'compute.macs'),
        'latency_ms': get_path(document, 'latency.median_ms'), 'peak_rss_mb': get_path(document, 'memory.peak_rss_mb'),
        'energy_joules_per_image': get_path(document, 'energy.joules_per_image'), **training,
    }
    return RunRecord(
        run_id=document['run_id'], submission=document['submission'], benchmark=document['benchmark'],
        protocol_version=int(document.get('protocol_version') or 0),
        hardware_fingerprint=str(get_path(document, 'hardware.fingerprint') or ''),
        miou=get_path(document, 'accuracy.miou'), miou_ci=tuple(interval) if interval else None,
        resources=resources, technique=str(get_path(document, 'manifest.technique') or ''),
        energy_measured=bool(get_path(document, 'energy.measured')), annotation_type=annotation,
        budget_state=state, status=document.get('status', 'failed'), compute_trusted=trusted,
        untrusted_reason=untrusted_reason, measurement_protocol_version=measurement_protocol_version(document),
        zero_shot_split=get_path(document, 'training.record.zero_shot_split') if state == 'verified' else None,
        training_free=state == 'declared' and training.get('train_images') == 0 and annotation == 'none')


def latest_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the newest run per idempotency key (failed runs have none and are kept); runs on another
    split than test (a cascade member's val run) are never ranked."""
    newest: dict[str, dict[str, Any]] = {}
    for document in documents:  # oldest first
        if (document.get('split') or 'test') != 'test':
            continue
        newest[document.get('run_key') or document['run_id']] = document
    return list(newest.values())


def rank_stored_runs(db_path: Path, *, resource: str, w: float, benchmark: str | None = None,
                     track: str = 'open', reference: float | None = None) -> list[dict[str, Any]]:
    """Ranked runs as dicts (the keys of ``frugalbench rank --format json``)."""
    if not Path(db_path).exists():
        return []
    with connect(db_path) as connection:
        documents = latest_documents(list_run_documents(connection, benchmark))
    ranked: list[dict[str, Any]] = []
    for name in sorted({d['benchmark'] for d in documents}):
        try:
            definition = load_benchmark(name)
        except BenchmarkError:
            continue  # runs of a benchmark file that is gone cannot be scored
        references = dict(parse_references(definition.references))
        if reference is not None:
            references[resource] = reference
        tracks = parse_tracks(definition.tracks, definition.zero_shot)
        records = [record_from_document(d) for d in documents if d['benchmark'] == name]
        for row in rank_runs(records, resource, w, references, track, tracks):
            ranked.append({'benchmark': name, **row.to_dict()})
    return ranked


def untrusted_stored_runs(db_path: Path, *, resource: str, benchmark: str | None = None) -> list[dict[str, Any]]:
    """Successful runs (newest per idempotency key) that are never ranked on ``resource`` because
    their compute counts are untrusted (``frugalbench.scores.trust.ranked_value``): run_id,
    submission, benchmark and reason; empty for a resource that is not a compute count."""
    if not get_resource(resource).compute_count or not Path(db_path).exists():
        return []
    with connect(db_path) as connection:
        documents = latest_documents(list_run_documents(connection, benchmark))
    rows = []
    for document in documents:
        record = record_from_document(document)
        if record.ok and not record.compute_trusted:
            rows.append({'run_id': record.run_id, 'submission': record.submission, 'benchmark': record.benchmark,
                         'reason': ranked_value(record, resource).reason})
    return rows
