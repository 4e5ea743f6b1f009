"""Frugality labels: one stored run's figures and provenance, in a form a paper, a model card or a
README can carry (SVG, PNG, JSON) and a one-line SVG badge.

A label is built from the run's stored document (``frugalbench.app_data``: a results database or a
public snapshot, ``frugalbench.store.snapshot``) and the scores of ``frugalbench.scores``:

- model name, benchmark (and whether it is synthetic), benchmark and measurement protocol versions;
- mIoU as a fraction with three decimals and its 95 % interval (the one stored with the run, else
  the leaderboard's bootstrap over its per-image areas: 1,000 resamples, seed 0);
- the frugality score at the benchmark's default resource and weight (``BenchmarkSetup``: the file's
  ``default_resource`` / ``default_w``, else params and 0.5), with the file's reference value,
  under the rankings' rule (``ranked_value``: untrusted compute counts are never scored);
- params, MACs (marked untrusted when counted where submission code ran), median latency at
  batch 1, energy per image (``measured`` or ``estimated``), training images and annotation with
  their budget state (verified, recorded, declared), hardware and device;
- the run id and the first ``SHORT_HASH`` hex digits of ``document_sha256`` (SHA-256 of the run
  document in canonical JSON), so a reader can find the run in a published snapshot and check it.

Every string from a submission is shown with control and bidi characters as visible escapes and
XML-escaped: a label is text, never markup.
"""
from __future__ import annotations

import functools
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from frugalbench.documents import get_path
from frugalbench.errors import FrugalbenchError
from frugalbench.store.snapshot import HASH_RULE, SHORT_HASH, document_sha256
from frugalbench.text import visible

FORMATS = ('svg', 'png', 'json', 'badge')
MAX_SHOWN = 64  # characters of a value on the SVG/PNG label (the full text is in JSON and in <title>)
NOT_MEASURED = 'not measured'


class LabelError(FrugalbenchError):
    """No label can be made for this run (unknown, failed)."""


@dataclass(frozen=True)
class Score:
    """The frugality score on the label: value, or None and ``note`` saying why."""

    resource: str
    unit: str
    w: float
    reference: float | None
    value: float | None
    note: str | None


@dataclass(frozen=True)
class Label:
    """What a label shows, as values (``rows`` formats them)."""

    run_id: str
    document_sha256: str
    created_at: str
    model: str
    submission: str
    benchmark: str
    synthetic: bool
    benchmark_protocol_version: int | None
    measurement_protocol_version: int | None
    miou: float
    miou_ci: tuple[float, float] | None
    miou_ci_source: str | None  # 'stored' | 'bootstrap' | None
    num_images: int | None
    score: Score
    params: float | None
    macs: float | None
    compute_trusted: bool
    untrusted_reason: str | None
    latency_ms: float | None
    energy_joules_per_image: float | None
    energy_measured: bool
    energy_method: str | None
    train_images: float | None
    annotation: str | None
    annotator_seconds: float | None
    budget_state: str
    hardware: str
    device: str | None

    @property
    def short_hash(self) -> str:
        return self.document_sha256[:SHORT_HASH]

    def to_dict(self) -> dict[str, Any]:
        """The label as JSON-ready values, with the hash rule."""
        values = asdict(self)
        values['miou_ci'] = list(self.miou_ci) if self.miou_ci else None
        values['energy'] = None if self.energy_joules_per_image is None else (
            'measured' if self.energy_measured else 'estimated')
        values['document_sha256_short'] = self.short_hash
        values['document_hash_rule'] = HASH_RULE
        return values

    def rows(self) -> list[tuple[str, str, str]]:
        """(field id, caption, text) of every line of the label, in order."""
        score = self.score
        score_text = (f'{score.value:.3f}  ({score.resource}, w = {score.w:g}, reference {score.reference:g} '
                      f'{score.unit})' if score.value is not None else f'not scored on {score.resource}: {score.note}')
        untrusted = '' if self.compute_trusted else ' (untrusted: shown, never ranked)'
        interval = (f'  (95% CI {self.miou_ci[0]:.3f} - {self.miou_ci[1]:.3f}, {self.miou_ci_source})'
                    if self.miou_ci else '  (no interval stored)')
        annotation = self.annotation or 'not stated'
        if self.annotator_seconds is not None:
            annotation += f', {self.annotator_seconds / 3600:.3g} annotator-hours'
        protocols = (f'benchmark v{_int(self.benchmark_protocol_version)}, '
                     f'measurement v{_int(self.measurement_protocol_version)}')
        return [
            ('model', 'Model', self.model),
            ('benchmark', 'Benchmark', self.benchmark + ('  (SYNTHETIC scenes)' if self.synthetic else '')),
            ('miou', 'mIoU', f'{self.miou:.3f}{interval}'),
            ('score', 'Frugality score', score_text),
            ('params', 'Params', (f'{self.params:,.0f} parameters' if self.params is not None
                                  else NOT_MEASURED) + untrusted),
            ('macs', 'MACs', (f'{self.macs / 1e9:.3g} GMACs per image' if self.macs is not None
                              else NOT_MEASURED) + (untrusted if self.macs is not None else '')),
            ('latency', 'Latency', f'{self.latency_ms:.3g} ms (median, batch 1)' if self.latency_ms is not None
             else NOT_MEASURED),
            ('energy', 'Energy', f'{self.energy_joules_per_image:.3g} J/image '
                                 f'({"measured" if self.energy_measured else "estimated"})'
             if self.energy_joules_per_image is not None else NOT_MEASURED),
            ('data', 'Training data', (f'{self.train_images:,.0f} images' if self.train_images is not None
                                       else 'not stated') + f' ({self.budget_state})'),
            ('annotation', 'Annotation', f'{annotation} ({self.budget_state})'),
            ('hardware', 'Hardware', self.hardware + (f' ({self.device})' if self.device else '')),
            ('protocol', 'Protocol', protocols),
            ('run', 'Run', f'{self.run_id}  ({self.created_at})'),
            ('hash', 'Document', f'sha256 {self.short_hash}'),
        ]


def _int(value: int | None) -> str:
    return '?' if value is None else str(int(value))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def hardware_text(document: dict[str, Any]) -> str:
    """'CPU model x logical CPUs + GPU [fingerprint]' from the run's hardware record."""
    hardware = document.get('hardware') or {}
    text = str(hardware.get('cpu_model') or 'unknown CPU')
    if hardware.get('cpu_logical'):
        text += f" x{hardware['cpu_logical']}"
    gpus = hardware.get('gpus') or []
    if gpus and isinstance(gpus[0], dict) and gpus[0].get('name'):
        text += f" + {gpus[0]['name']}"
    if hardware.get('fingerprint'):
        text += f" [{hardware['fingerprint']}]"
    return text


def _score(document: dict[str, Any], setup: Any) -> Score:
    from frugalbench.ranking import record_from_document
    from frugalbench.scores import RESOURCES, frugality_score, ranked_value
    resource = RESOURCES[setup.default_resource]
    reference = setup.references.get(resource.name)
    if reference is None:
        return Score(resource.name, resource.unit, setup.default_w, None, None,
                     setup.note or 'the benchmark file states no reference value for it')
    value, reason = ranked_value(record_from_document(document), resource)
    if value is None:
        return Score(resource.name, resource.unit, setup.default_w, reference, None, reason)
    miou = float(document['accuracy']['miou'])
    return Score(resource.name, resource.unit, setup.default_w, reference,
                 frugality_score(miou, value, reference, setup.default_w), None)


def build_label(document: dict[str, Any], setup: Any, interval: tuple[float, float] | None = None) -> Label:
    """The label of a successful run's ``document``, scored with ``setup`` (``BenchmarkSetup``).
    ``interval``: the mIoU interval when the document stores none (bootstrap)."""
    from frugalbench.ranking import training_figures
    from frugalbench.store.runs import compute_trust, measurement_protocol_version
    if document.get('status') != 'ok' or _number(get_path(document, 'accuracy.miou')) is None:
        raise LabelError(f"run {document.get('run_id')} did not succeed ({document.get('failure_reason')}): only a "
                         'successful run gets a label')
    stored = get_path(document, 'accuracy.miou_ci')
    if isinstance(stored, list) and len(stored) == 2 and all(_number(v) is not None for v in stored):
        ci, source = (float(stored[0]), float(stored[1])), 'stored'
    elif interval is not None:
        ci, source = (float(interval[0]), float(interval[1])), 'bootstrap'
    else:
        ci, source = None, None
    trusted, reason = compute_trust(document)
    figures, annotation, state = training_figures(document)
    protocol = document.get('protocol_version')
    return Label(
        run_id=str(document['run_id']), document_sha256=document_sha256(document),
        created_at=str(document.get('created_at')),
        model=str(get_path(document, 'manifest.name') or document.get('submission')),
        submission=str(document.get('submission')), benchmark=str(document.get('benchmark')),
        synthetic=document.get('synthetic') is True,
        benchmark_protocol_version=int(protocol) if isinstance(protocol, int) else None,
        measurement_protocol_version=measurement_protocol_version(document),
        miou=float(document['accuracy']['miou']), miou_ci=ci, miou_ci_source=source,
        num_images=get_path(document, 'accuracy.num_images'), score=_score(document, setup),
        params=_number(get_path(document, 'compute.params')), macs=_number(get_path(document, 'compute.macs')),
        compute_trusted=trusted, untrusted_reason=reason,
        latency_ms=_number(get_path(document, 'latency.median_ms')),
        energy_joules_per_image=_number(get_path(document, 'energy.joules_per_image')),
        energy_measured=get_path(document, 'energy.measured') is True,
        energy_method=get_path(document, 'energy.method'),
        train_images=_number(figures.get('train_images')), annotation=annotation,
        annotator_seconds=_number(figures.get('annotation_seconds')), budget_state=state,
        hardware=hardware_text(document), device=document.get('device'))


def label_for_run(source: Path, run_id: str) -> Label:
    """The label of stored run ``run_id`` (or a unique prefix of it) in ``source``: a results
    database or a snapshot folder. LabelError when there is no such run or it failed."""
    from frugalbench import app_data as data
    resolved = data.resolve_run_id(source, run_id)
    detail = data.run_detail(source, resolved) if resolved else None
    if detail is None:
        raise LabelError(f'no run {run_id!r} in {source}: `frugalbench results --format json` lists the run ids')
    document = detail.document
    benchmark = str(document.get('benchmark'))
    setup = data.benchmark_setup(benchmark, data.benchmark_definition(source, benchmark))
    interval = None
    if document.get('status') == 'ok' and not get_path(document, 'accuracy.miou_ci'):
        interval = data.bootstrap_intervals(data.image_areas(source, [resolved])).get(resolved)
    return build_label(document, setup, interval)


# ---------------------------------------------------------------- rendering

def _shown(text: str, limit: int = MAX_SHOWN) -> str:
    text = visible(text)
    return text if len(text) <= limit else text[:limit - 1] + '\u2026'


def _x(text: str) -> str:
    return escape(text, {'"': '&quot;'})


WIDTH, ROW, TOP, CAPTION_X, VALUE_X = 640, 20, 64, 16, 150
FONT = 'DejaVu Sans, Verdana, Arial, sans-serif'


def render_svg(label: Label) -> str:
    """The label as a standalone SVG document; each value is a ``<text id="field-...">``."""
    rows = label.rows()
    height = TOP + ROW * len(rows) + 28
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
         f'viewBox="0 0 {WIDTH} {height}" font-family="{FONT}" font-size="13">'),
        f'<title>frugalbench label: {_x(visible(label.model))} on {_x(visible(label.benchmark))}</title>',
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff" stroke="#222222" stroke-width="2"/>',
        f'<rect width="{WIDTH}" height="44" fill="#1f3a5f"/>',
        '<text x="16" y="28" fill="#ffffff" font-size="18" font-weight="bold">frugalbench frugality label</text>',
    ]
    for index, (field, caption, text) in enumerate(rows):
        y = TOP + ROW * index + 8
        if index % 2:
            parts.append(f'<rect x="2" y="{y - 14}" width="{WIDTH - 4}" height="{ROW}" fill="#f1f4f8"/>')
        shown = _shown(text)
        title = f'<title>{_x(visible(text))}</title>' if shown != visible(text) else ''
        parts.append(f'<text x="{CAPTION_X}" y="{y}" fill="#555555">{_x(caption)}</text>')
        parts.append(f'<text id="field-{field}" x="{VALUE_X}" y="{y}" fill="#111111">{title}{_x(shown)}</text>')
    parts.append(f'<text x="{CAPTION_X}" y="{height - 10}" fill="#777777" font-size="10">Check: the run with this '
                 'id in a frugalbench snapshot; document sha256 = canonical JSON of runs.document '
                 '(docs/leaderboard.md)</text>')
    parts.append('</svg>')
    return '\n'.join(parts) + '\n'


def _text_width(text: str, size: float = 11) -> int:
    return int(len(text) * size * 0.62) + 12


def badge_texts(label: Label) -> tuple[str, str]:
    """(left, right) text of the badge."""
    score = label.score
    scored = f' | score {score.value:.3f} ({score.resource}, w {score.w:g})' if score.value is not None else ''
    return (f'frugalbench {_shown(label.benchmark, 24)}',
            f'mIoU {label.miou:.3f}{scored} | {label.short_hash}')


def render_badge(label: Label) -> str:
    """A one-line SVG badge (shields style) for a README: benchmark | mIoU, score and short hash."""
    left, right = badge_texts(label)
    lw, rw = _text_width(left), _text_width(right)
    width = lw + rw
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
            f'aria-label="{_x(left)}: {_x(right)}"><title>{_x(left)}: {_x(right)} (run {_x(label.run_id)})</title>'
            f'<rect width="{lw}" height="20" rx="3" fill="#555"/>'
            f'<rect x="{lw}" width="{rw}" height="20" rx="3" fill="#1f3a5f"/>'
            f'<g fill="#fff" font-family="{FONT}" font-size="11">'
            f'<text x="6" y="14">{_x(left)}</text><text x="{lw + 6}" y="14">{_x(right)}</text></g></svg>\n')


@functools.lru_cache(maxsize=8)
def _font(size: int) -> Any:
    from PIL import ImageFont
    return ImageFont.load_default(size=size)


def render_png(label: Label, scale: int = 2) -> bytes:
    """The label as a PNG (Pillow's built-in scalable font), the same lines as the SVG."""
    from PIL import Image, ImageDraw
    rows = label.rows()
    height = TOP + ROW * len(rows) + 28
    image = Image.new('RGB', (WIDTH * scale, height * scale), 'white')
    draw = ImageDraw.Draw(image)
    font, bold, small = _font(13 * scale), _font(18 * scale), _font(10 * scale)
    draw.rectangle([0, 0, WIDTH * scale - 1, height * scale - 1], outline='#222222', width=2 * scale)
    draw.rectangle([0, 0, WIDTH * scale, 44 * scale], fill='#1f3a5f')
    draw.text((16 * scale, 28 * scale), 'frugalbench frugality label', fill='white', font=bold, anchor='ls')
    for index, (_, caption, text) in enumerate(rows):
        y = TOP + ROW * index + 8
        if index % 2:
            draw.rectangle([2 * scale, (y - 14) * scale, (WIDTH - 2) * scale, (y - 14 + ROW) * scale], fill='#f1f4f8')
        draw.text((CAPTION_X * scale, y * scale), caption, fill='#555555', font=font, anchor='ls')
        draw.text((VALUE_X * scale, y * scale), _shown(text), fill='#111111', font=font, anchor='ls')
    draw.text((CAPTION_X * scale, (height - 10) * scale), 'Check: document sha256 = canonical JSON of runs.document '
              '(docs/leaderboard.md)', fill='#777777', font=small, anchor='ls')
    buffer = io.BytesIO()
    image.save(buffer, format='PNG')
    return buffer.getvalue()


def render_json(label: Label) -> str:
    return json.dumps(label.to_dict(), indent=2) + '\n'


def render(label: Label, kind: str) -> bytes:
    """The label in one of ``FORMATS`` as bytes."""
    if kind == 'png':
        return render_png(label)
    if kind == 'json':
        return render_json(label).encode('utf-8')
    if kind == 'badge':
        return render_badge(label).encode('utf-8')
    return render_svg(label).encode('utf-8')


def file_name(label: Label, kind: str) -> str:
    """A download file name: frugalbench-label-<run id>.<svg|png|json> (badge: -badge.svg)."""
    stem = ''.join(c if c.isascii() and (c.isalnum() or c in '._-') else '_' for c in label.run_id)
    return f'frugalbench-badge-{stem}.svg' if kind == 'badge' else f'frugalbench-label-{stem}.{kind}'
