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
from frugalbench.scores import RunRecord, parse_references, parse_tracks, rank_runs
from frugalbench.store import connect, list_run_documents




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
        budget_state=state, status=document.get('status', 'failed'))


def latest_documents(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep the newest run per idempotency key (failed runs have none and are kept)."""
    newest: dict[str, dict[str, Any]] = {}
    for document in documents:  # oldest first
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
        tracks = parse_tracks(definition.tracks)
        records = [record_from_document(d) for d in documents if d['benchmark'] == name]
        for row in rank_runs(records, resource, w, references, track, tracks):
            ranked.append({'benchmark': name, **row.to_dict()})
    return ranked
