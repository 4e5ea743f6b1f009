"""The leaderboard's Cascades tab (issue 19): each cascade's budget-mIoU curve (fitted on val,
scored on test) next to the single models, their Pareto front and the oracle, with FrugalML's
two headline numbers. ``curve_frames`` builds the frames; ``cascades_tab`` lays them out."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from frugalbench.app_data.queries import read
from frugalbench.app_data.views import plain_text
from frugalbench.cascades.store import latest_curves
from frugalbench.scores.pareto import pareto_flags
from frugalbench.text import markdown_literal

UNITS = {'latency_ms': 'ms', 'macs': 'MACs', 'energy_joules_per_image': 'J'}


def curves(db_path: Path, benchmark: str) -> list[dict[str, Any]]:
    """The newest fitted curve of each cascade and resource of ``benchmark`` (read-only)."""
    return read(db_path, lambda connection: latest_curves(connection, benchmark))


def curve_frames(curve: dict[str, Any], runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``cascade`` (feasible points: cost, mIoU, escalation rate), ``singles`` (the benchmark's other
    ok single-model runs on that resource, untrusted compute counts left out), ``front`` (their
    Pareto front), ``members`` (each member alone, from the curve), ``oracle`` (one point)."""
    resource = curve['resource']
    points = [{'label': f'budget {p["budget"]:.4g}', 'budget': p['budget'], 'cost': p['test']['cost'],
               'miou': p['test']['miou'], 'escalation_rate': p['test']['escalation_rate'],
               'kind': f'cascade {curve["cascade"]}'}
              for p in curve['points'] if p.get('feasible')]
    cascade = pd.DataFrame(points, columns=['label', 'budget', 'cost', 'miou', 'escalation_rate', 'kind'])
    singles = runs[(runs['status'] == 'ok') & (runs['technique'].fillna('') != 'cascade')
                   & runs[resource].notna() & runs['miou'].notna()]
    if resource == 'macs' and 'compute_trusted' in singles:
        singles = singles[singles['compute_trusted'].fillna(True).astype(bool)]
    singles = pd.DataFrame({'label': singles['submission_name'].astype(str), 'cost': singles[resource].astype(float),
                            'miou': singles['miou'].astype(float), 'kind': 'single model'})
    flags = pareto_flags(list(zip(singles['miou'], singles['cost'])))
    front = singles[flags].sort_values('cost').assign(kind='Pareto front (single models)')
    oracle = pd.DataFrame([{'label': 'oracle (per-image best member)', 'cost': curve['oracle']['cost'],
                            'miou': curve['oracle']['miou'], 'kind': 'oracle'}])
    members = pd.DataFrame([{'label': m['submission'], 'cost': m['cost'], 'miou': m['test_miou'],
                             'kind': 'cascade member (alone)'} for m in curve['members']])
    return {'cascade': cascade, 'singles': singles, 'front': front, 'oracle': oracle, 'members': members}


def headline_text(curve: dict[str, Any]) -> str:
    head, unit = curve['headline'], UNITS.get(curve['resource'], '')
    saving = head['cost_saving_at_best_accuracy']
    if saving is None:
        saved = 'no fitted policy reaches its mIoU'
    elif saving >= 0:
        saved = f'{saving:.1%} of its {curve["resource"]} saved at its mIoU'
    else:
        saved = f'reaching its mIoU costs {-saving:.1%} more {curve["resource"]} than it'
    return (f'Against the best single member {head["best_single"]} (test mIoU {head["best_single_miou"]:.4f} at '
            f'{head["best_single_cost"]:.4g} {unit}): {saved}; {head["miou_gain_at_best_cost"]:+.4f} mIoU at its '
            f'cost (escalation rate {head["escalation_rate_at_best_cost"]:.2f}).')


def cascades_tab(db_path: Path, benchmark: str, runs: pd.DataFrame) -> None:
    """The tab: one chart and table per stored curve; a hint when there is none."""
    import altair as alt
    import streamlit as st
    stored = curves(db_path, benchmark)
    if not stored:
        st.info('No cascade curve is stored for this benchmark: run `frugalbench cascade fit CASCADE --resource '
                'macs --budgets ...` (docs/cascades.md).')
        return
    for curve in stored:
        frames = {k: plain_text(v) for k, v in curve_frames(curve, runs).items()}
        unit = UNITS.get(curve['resource'], '')
        st.subheader(markdown_literal(f'{curve["cascade"]}: test mIoU vs expected {curve["resource"]} per image'))
        x = alt.X('cost:Q', title=f'expected {curve["resource"]} per image ({unit})', scale=alt.Scale(zero=False))
        y = alt.Y('miou:Q', title='test mIoU', scale=alt.Scale(zero=False))
        tip = ['label:N', 'kind:N', alt.Tooltip('cost:Q', format='.4g'), alt.Tooltip('miou:Q', format='.4f')]
        layers = [
            alt.Chart(frames['singles']).mark_circle(size=70, opacity=0.6).encode(x=x, y=y, color='kind:N',
                                                                                  tooltip=tip),
            alt.Chart(frames['front']).mark_line(strokeDash=[4, 3]).encode(x=x, y=y, color='kind:N'),
            alt.Chart(frames['cascade']).mark_line(point=True).encode(
                x=x, y=y, color='kind:N', tooltip=[*tip, alt.Tooltip('escalation_rate:Q', format='.2f')]),
            alt.Chart(frames['members']).mark_square(size=90).encode(x=x, y=y, color='kind:N', tooltip=tip),
            alt.Chart(frames['oracle']).mark_point(shape='diamond', size=120, filled=True).encode(
                x=x, y=y, color='kind:N', tooltip=tip),
        ]
        st.altair_chart(alt.layer(*layers), width='stretch')
        st.caption(markdown_literal(headline_text(curve)))
        st.caption(f'Thresholds fitted on val ({curve["val_images"]} images), scored on test '
                   f'({curve["test_images"]} images); the oracle picks, per test image, the member with the most '
                   'correct pixels (an upper bound for any gate).')
        table = frames['cascade'].rename(columns={'cost': f'test cost ({unit})', 'miou': 'test mIoU'})
        st.dataframe(table.drop(columns=['kind']), hide_index=True, width='stretch', key=f'cascade-{curve["curve_id"]}')
