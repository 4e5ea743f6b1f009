"""Evaluating a cascade: its members as ordinary runs (test and val), then the harness's routing.

``evaluate_cascade`` evaluates (or reuses) every member on the val and the test split, each in its
own confined model process, with confidence histograms in its answers; fits the policy's thresholds
on val only (when the policy is a budget), routes the test images, and stores one run for the
cascade (``technique: cascade``) whose figures come from its members' measurements. ``fit_curve``
does the same fitting for several budgets and stores the budget-mIoU curve.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from frugalbench.accuracy import ImageAreas, summarize
from frugalbench.benchmarks import Benchmark, load_benchmark
from frugalbench.cascades import policy as P
from frugalbench.cascades.policy import CascadeError, SplitData
from frugalbench.cascades.store import save_curve, split_data
from frugalbench.documents import get_path
from frugalbench.errors import BenchmarkError, FrugalbenchError, StoreError
from frugalbench.evaluation import (
    EvaluationOptions,
    EvaluationOutcome,
    ProgressCallback,
    _Clock,
    _common,
    _failed_document,
    _store,
    check_classes,
    evaluate_submission,
    run_key,
)
from frugalbench.measurements.record import Measurement
from frugalbench.scores.uncertainty import bootstrap_miou_ci
from frugalbench.submission import (
    CascadeManifest,
    Submission,
    load_cascade_manifest,
    load_submission,
)
from frugalbench.summary import resource_summary

CONFIDENCE_BINS = 100
# resource name (CLI, manifest) -> (measurement name, unit) in the members' runs
RESOURCES = {'latency_ms': ('latency_b1', 'ms'), 'macs': ('macs', 'MACs'),
             'energy_joules_per_image': ('energy_per_image', 'J')}
SUMMED = {'params': 'parameters', 'model_size_on_disk': 'bytes', 'peak_rss': 'bytes'}


@dataclass(frozen=True)
class Members:
    """The members' stored runs (member order) on each split, and their per-image cost figures."""

    ids: tuple[str, ...]
    test: tuple[dict[str, Any], ...]
    val: tuple[dict[str, Any], ...]

    def cost(self, resource: str) -> list[float]:
        name, unit = RESOURCES[resource]
        costs = []
        for member_id, document in zip(self.ids, self.test):
            item = _measurement(document, name)
            if item is None or item.get('value') is None or item.get('unit') != unit:
                why = (item or {}).get('unavailable_reason') or 'not measured (evaluated with --no-measure?)'
                raise CascadeError(f'member {member_id} has no {resource} figure ({why}): choose another resource')
            costs.append(float(item['value']))
        return costs


def _measurement(document: dict[str, Any], name: str) -> dict[str, Any] | None:
    return next((m for m in document.get('measurements') or [] if m.get('name') == name), None)


def resolve_members(folder: Path, manifest: CascadeManifest, benchmark: Benchmark) -> list[Submission]:
    """The member submissions (folders beside the cascade's), each of the cascade's benchmark and classes."""
    members = []
    for member_id in manifest.members:
        path = Path(folder).resolve().parent / member_id
        if not path.is_dir():
            raise CascadeError(f'member {member_id!r} is not a submission folder beside the cascade ({path}): '
                               'name existing submissions by their id (their folder name)')
        submission = load_submission(path)
        if submission.manifest.benchmark != benchmark.name:
            raise CascadeError(f'member {member_id!r} is a submission of benchmark '
                               f'{submission.manifest.benchmark!r}, the cascade is of {benchmark.name!r}: every '
                               'member must be of the cascade\'s benchmark')
        try:
            check_classes(submission, benchmark)
        except FrugalbenchError as exc:
            raise CascadeError(f'member {member_id!r}: {exc}') from None
        members.append(submission)
    return members


def check_cascade(folder: Path) -> CascadeManifest:
    """A cascade folder's manifest, its benchmark and its members, checked without running anything."""
    manifest = load_cascade_manifest(folder)
    resolve_members(folder, manifest, load_benchmark(manifest.benchmark))
    return manifest


def member_runs(members: list[Submission], options: EvaluationOptions,
                on_progress: ProgressCallback | None = None) -> Members:
    """Evaluate or reuse each member on test (measured) and val (accuracy and confidence only: its
    cost is the test figures), each an ordinary stored run with confidence histograms."""
    runs: dict[str, list[dict[str, Any]]] = {'test': [], 'val': []}
    for split in ('test', 'val'):
        for submission in members:
            member_options = dataclasses.replace(options, split=split, confidence_bins=CONFIDENCE_BINS,
                                                 measure=options.measure and split == 'test')
            outcome = evaluate_submission(submission.folder, member_options, on_progress)
            if not outcome.ok:
                raise CascadeError(f'member {submission.id} failed on the {split} split: '
                                   f'{outcome.document.get("failure_reason")}')
            runs[split].append(outcome.document)
    return Members(ids=tuple(s.id for s in members), test=tuple(runs['test']), val=tuple(runs['val']))


@dataclass(frozen=True)
class Prepared:
    folder: Path
    manifest: CascadeManifest
    benchmark: Benchmark
    members: Members
    val: SplitData
    test: SplitData
    db_path: Path


def prepare(folder: Path, options: EvaluationOptions, on_progress: ProgressCallback | None = None) -> Prepared:
    """Read the manifest, check the members, evaluate or reuse their runs and load their answers."""
    manifest = load_cascade_manifest(folder)
    benchmark = load_benchmark(options.benchmark or manifest.benchmark)
    if 'val' not in benchmark.splits:
        raise CascadeError(f'benchmark {benchmark.name!r} has no val split: thresholds are fitted on val only')
    submissions = resolve_members(folder, manifest, benchmark)
    members = member_runs(submissions, options, on_progress)
    gate = manifest.gate
    return Prepared(Path(folder), manifest, benchmark, members,
                    split_data(options.db_path, list(members.val), gate.statistic, gate.level),
                    split_data(options.db_path, list(members.test), gate.statistic, gate.level), options.db_path)


def fit(prepared: Prepared, resource: str, budget: float) -> P.PolicyResult:
    """The thresholds of highest val mIoU with expected val cost <= budget (grid search, val only)."""
    costs = prepared.members.cost(resource)
    results = P.val_results(prepared.val, prepared.manifest.gate.statistic, costs)
    return P.best_under_budget(results, budget)


def evaluate_cascade(folder: Path, options: EvaluationOptions,
                     on_progress: ProgressCallback | None = None) -> EvaluationOutcome:
    """Evaluate a cascade folder and store its run (failures recorded with their reason)."""
    run_id = uuid.uuid4().hex
    clock = _Clock()
    options = dataclasses.replace(options, split='test')
    if options.detached is not None:  # serve's Ray tasks never open the database
        raise CascadeError('a cascade reads its members\' stored runs: evaluate it with `frugalbench evaluate '
                           'CASCADE` on the machine that holds the database, not through a detached task')
    try:
        prepared = prepare(folder, options, on_progress)
        stored = None if options.force else _stored_run(options.db_path, cascade_key(prepared))
        if stored is not None:
            return EvaluationOutcome({**stored, 'reused': True}, reused=True)
        document, areas, measurements = cascade_document(run_id, prepared, options)
    except (BenchmarkError, StoreError):
        raise
    except FrugalbenchError as exc:
        document = _failed_document(run_id, Path(folder), options.benchmark, options, str(exc), clock)
        _store(options.db_path, document)
        return EvaluationOutcome(document)
    document['timings'] = {'total': clock.total()}
    accuracy = summarize(areas, prepared.benchmark.classes)
    _store(options.db_path, document, prepared.benchmark.classes, accuracy, measurements)
    return EvaluationOutcome(document)


def _policy(prepared: Prepared) -> tuple[tuple[float, ...], dict[str, Any]]:
    policy = prepared.manifest.policy
    statistic = prepared.manifest.gate.statistic
    if policy.thresholds is not None:
        return tuple(policy.thresholds), {'kind': 'thresholds', 'fitted': False}
    budget = policy.budget
    assert budget is not None
    chosen = fit(prepared, budget.resource, budget.value)
    return chosen.thresholds, {'kind': 'budget', 'resource': budget.resource, 'budget': budget.value,
                               'fitted': True, 'fitted_on': 'val', 'val': chosen.to_dict(),
                               'search': search_text(statistic)}


def search_text(statistic: str) -> str:
    return (f'grid search on val: per gate, never/always escalate and every midpoint between consecutive '
            f'distinct val values of {statistic} (thinned to quantiles when the grid would exceed '
            f'{P.MAX_GRID} policies); the policy of highest val mIoU with expected val cost <= budget (ties: '
            'the cheaper)')


def cascade_document(run_id: str, prepared: Prepared,
                     options: EvaluationOptions) -> tuple[dict[str, Any], list[ImageAreas], list[dict[str, Any]]]:
    """The cascade's run document, its routed per-image areas and its measurements."""
    manifest, members, test = prepared.manifest, prepared.members, prepared.test
    thresholds, policy = _policy(prepared)
    final = P.route(test, thresholds, manifest.gate.statistic)
    reach = P.reach_rates(final, test.members)
    inter, union = P.routed_areas(test, final)
    areas = _image_areas(prepared, final)
    accuracy = summarize(areas, prepared.benchmark.classes)
    measurements = cascade_measurements(members, reach)
    interval = bootstrap_miou_ci(inter, union)
    first = members.test[0]
    manifest_sha = _manifest_sha(manifest)
    untrusted = [d['submission'] for d in members.test if not get_path(d, 'compute.trusted')]
    untrusted_reason = (f'member(s) {", ".join(untrusted)} ran their own code where compute was counted'
                        if untrusted else None)
    document = {
        **_common(run_id, options, 'ok', None),
        'submission': prepared.folder.resolve().name, 'benchmark': prepared.benchmark.name,
        'protocol_version': prepared.benchmark.protocol_version, 'synthetic': prepared.benchmark.synthetic,
        'manifest': {**manifest.model_dump(mode='json'), 'parent': members.ids[0]},
        'accuracy': {**accuracy.to_dict(), 'miou_ci': [interval.low, interval.high],
                     'miou_ci_method': 'bootstrap over test images, 1000 resamples, 95 %, seed 0',
                     'computed_from': "the members' stored per-image areas, summed over the images as routed"},
        **resource_summary(measurements, untrusted_reason=untrusted_reason),
        'measurements': measurements,
        'measurement_protocol': first.get('measurement_protocol'),
        'training': {'declared': _declared_training(members), 'state': 'declared', 'verified': False,
                     'note': 'a cascade trains nothing; its members\' declared budgets (the largest image count)'},
        'custom_code': any(bool(d.get('custom_code')) for d in members.test),
        'architecture': 'cascade: ' + ' -> '.join(str(d.get('architecture') or d['submission'])
                                                  for d in members.test),
        'hashes': {'checkpoint_sha256': None, 'config_sha256': manifest_sha,
                   'benchmark_sha256': prepared.benchmark.definition_hash},
        'cascade': {
            'members': [{'submission': m, 'test_run_id': t['run_id'], 'val_run_id': v['run_id'],
                         'test_miou': get_path(t, 'accuracy.miou'), 'val_miou': get_path(v, 'accuracy.miou'),
                         'reach_rate': r}
                        for m, t, v, r in zip(members.ids, members.test, members.val, reach)],
            'gate': manifest.gate.model_dump(mode='json'),
            'gate_rule': _gate_rule(manifest.gate.statistic),
            'policy': policy, 'thresholds': list(thresholds),
            'escalation_rate': reach[1], 'reach_rates': reach,
            'confidence_bins': CONFIDENCE_BINS,
            'cost_rule': 'expected per test image: the first member always, plus each member an image is escalated '
                         'to; params and size summed; peak memory: the members resident together (sum of peaks)',
        },
        'run_key': cascade_key(prepared),
    }
    return document, areas, measurements


def _manifest_sha(manifest: CascadeManifest) -> str:
    return hashlib.sha256(json.dumps(manifest.model_dump(mode='json'), sort_keys=True).encode()).hexdigest()


def cascade_key(prepared: Prepared) -> str:
    """Idempotency key of a cascade run: its id, manifest and the member runs it routes."""
    members = prepared.members
    return run_key('cascade', prepared.folder.resolve().name, _manifest_sha(prepared.manifest),
                   *(d['run_id'] for d in (*members.test, *members.val)))


def _stored_run(db_path: Path, key: str) -> dict[str, Any] | None:
    from frugalbench.store import connect, find_reusable_run
    with connect(db_path) as connection:
        return find_reusable_run(connection, key)


def _gate_rule(statistic: str) -> str:
    if statistic == 'mean_max_prob':
        return 'escalate when the mean max-probability of the answer is under the threshold'
    return 'escalate when the fraction of pixels under the confidence level is over the threshold'


def _declared_training(members: Members) -> dict[str, Any]:
    declared = [get_path(d, 'manifest.training') or {} for d in members.test]
    images = max((int(d.get('images') or 0) for d in declared), default=0)
    kinds = {d.get('annotation') for d in declared}
    return {'images': images, 'annotation': kinds.pop() if len(kinds) == 1 else 'full',
            'notes': 'cascade of ' + ', '.join(members.ids)}


def _image_areas(prepared: Prepared, final: np.ndarray) -> list[ImageAreas]:
    """Each test image's areas as its final member stored them (the image_areas table), for summarize."""
    from frugalbench.store import connect
    rows: list[dict[str, list[Any]]] = []
    with connect(prepared.db_path) as connection:
        for document in prepared.members.test:
            rows.append({r[0]: r[1:] for r in connection.execute(
                'SELECT image, intersect_, union_, pred, label FROM image_areas WHERE run_id = ?',
                [document['run_id']]).fetchall()})
    areas = []
    for index, image in enumerate(prepared.test.images):
        inter, union, pred, label = (np.asarray(v, dtype=np.float64) for v in rows[int(final[index])][image])
        areas.append(ImageAreas(image=image, intersect=inter, union=union, pred=pred, label=label))
    return areas


def cascade_measurements(members: Members, reach: list[float]) -> list[dict[str, Any]]:
    """Expected per-image latency, MACs, FLOPs and energy (reach-weighted sums of the members'
    figures); params, size on disk and peak memory summed (the members resident together)."""
    items = []
    for name in ('latency_b1', 'macs', 'flops', 'energy_per_image'):
        figures = [_measurement(d, name) for d in members.test]
        if any(f is None for f in figures):
            continue
        units = {f['unit'] for f in figures}
        values = [f.get('value') for f in figures]
        method = (f'cascade: expected per test image, sum over members of (their {name}) x (the fraction of '
                  f'images that reach them: {", ".join(f"{r:.3f}" for r in reach)})')
        measured = all(bool(f.get('measured')) for f in figures)
        if len(units) != 1 or any(v is None for v in values):
            reason = 'a member has no value' if len(units) == 1 else 'the members report different units'
            items.append(Measurement(name, None, figures[0]['unit'], method, unavailable_reason=reason).to_dict())
            continue
        details = {'members': [{'value': v, 'method': f.get('method')} for v, f in zip(values, figures)],
                   'reach_rates': reach, 'basis': 'members\' measured figures, not re-measured'}
        if name == 'energy_per_image':
            details['member_methods'] = sorted({str(f.get('method')) for f in figures})
        items.append(Measurement(name, float(sum(v * r for v, r in zip(values, reach))), units.pop(), method,
                                 measured=measured, details=details).to_dict())
    for name, unit in SUMMED.items():
        figures = [_measurement(d, name) for d in members.test]
        if any(f is None or f.get('value') is None or f.get('unit') != unit for f in figures):
            continue
        items.append(Measurement(name, float(sum(f['value'] for f in figures)), unit,
                                 f'cascade: sum of the members\' {name} (every member loaded, resident together)',
                                 measured=all(bool(f.get('measured')) for f in figures),
                                 details={'members': [f['value'] for f in figures]}).to_dict())
    return items


def fit_curve(folder: Path, options: EvaluationOptions, resource: str, budgets: list[float],
              on_progress: ProgressCallback | None = None) -> dict[str, Any]:
    """For each budget, the val-fitted policy and its test mIoU and cost; the oracle, the single
    members and FrugalML's two headline numbers; stored in ``cascade_curves``."""
    if resource not in RESOURCES:
        raise CascadeError(f'unknown resource {resource!r}: use one of {", ".join(RESOURCES)}')
    if not budgets or any(b <= 0 for b in budgets):
        raise CascadeError('give one or more positive budgets')
    options = dataclasses.replace(options, split='test')
    prepared = prepare(folder, options, on_progress)
    members = prepared.members
    singles = [{'submission': m, 'test_run_id': d['run_id'], 'val_run_id': v['run_id'],
                'test_miou': get_path(d, 'accuracy.miou')}
               for m, d, v in zip(members.ids, members.test, members.val)]
    document = curve_document(prepared.folder.resolve().name, prepared.benchmark.name, resource,
                              prepared.manifest.gate.model_dump(mode='json'), singles, members.cost(resource),
                              prepared.val, prepared.test, budgets)
    save_curve(options.db_path, document)
    return document


def curve_document(cascade: str, benchmark: str, resource: str, gate: dict[str, Any],
                   singles: list[dict[str, Any]], costs: list[float], val: SplitData, test: SplitData,
                   budgets: list[float]) -> dict[str, Any]:
    """The curve: per budget, the policy fitted on ``val`` and its figures on ``test``; the oracle;
    the headline numbers against the best single member (``singles``: one dict per member)."""
    statistic = gate['statistic']
    results = P.val_results(val, statistic, costs)
    points = []
    for budget in sorted(budgets):
        try:
            chosen = P.best_under_budget(results, budget)
        except CascadeError as exc:
            points.append({'budget': budget, 'feasible': False, 'reason': str(exc)})
            continue
        on_test = P.evaluate_policy(test, chosen.thresholds, statistic, costs)
        points.append({'budget': budget, 'feasible': True, 'thresholds': list(chosen.thresholds),
                       'val': chosen.to_dict(), 'test': on_test.to_dict()})
    singles = [{**s, 'cost': c} for s, c in zip(singles, costs)]
    return {
        'cascade': cascade, 'benchmark': benchmark, 'resource': resource, 'unit': _unit(resource), 'gate': gate,
        'members': singles, 'points': points, 'search': search_text(statistic),
        'oracle': P.oracle(test, costs), 'headline': headline(test, statistic, results, costs, singles),
        'val_images': len(val.images), 'test_images': len(test.images),
    }


def _unit(resource: str) -> str:
    return RESOURCES[resource][1]


def headline(test: SplitData, statistic: str, results: list[P.PolicyResult], costs: list[float],
             singles: list[dict[str, Any]]) -> dict[str, Any]:
    """FrugalML's two numbers against the best single member (highest test mIoU): the cost saved at its
    accuracy (the cheapest val-fitted policy whose test mIoU reaches it) and the mIoU gained at its cost
    (the policy fitted with its cost as the budget). Every policy is fitted on val, scored on test."""
    best = max(singles, key=lambda s: s['test_miou'])
    on_test = [P.evaluate_policy(test, r.thresholds, statistic, costs) for r in P.frontier(results)]
    reaching = [r for r in on_test if r.miou >= best['test_miou'] - 1e-12]
    cheapest = min(reaching, key=lambda r: r.cost) if reaching else None
    at_cost = P.evaluate_policy(test, P.best_under_budget(results, best['cost']).thresholds,
                                statistic, costs)
    return {
        'best_single': best['submission'], 'best_single_miou': best['test_miou'], 'best_single_cost': best['cost'],
        'cost_saving_at_best_accuracy': (1.0 - cheapest.cost / best['cost']) if cheapest else None,
        'cost_at_best_accuracy': cheapest.cost if cheapest else None,
        'cost_saving_note': None if cheapest else 'no val-fitted policy reaches the best single member\'s test mIoU',
        'miou_gain_at_best_cost': at_cost.miou - best['test_miou'],
        'miou_at_best_cost': at_cost.miou, 'escalation_rate_at_best_cost': at_cost.escalation_rate,
    }
