"""Benchmarks as data: one YAML file each, in this folder or under ``$FRUGALBENCH_DATA/benchmarks``.

A benchmark file names the dataset's location and layout, its splits, classes, ignore index,
evaluation size, protocol version, the reference values of frugality scores and its budget
tracks. The protocol version is stored with every result, and results of different protocol
versions are never ranked together.

Around the definitions: ``synthetic`` (the generated offline benchmark), ``prepare``
(generate/verify/register data), ``subsets`` (nested data budgets), ``annotations`` (weaker
annotations derived from full masks) and ``annotation_cost`` (annotator time estimates).
"""
from frugalbench.benchmarks.definition import (
    ANNOTATION_KINDS,
    REFERENCE_KEYS,
    AnnotationKind,
    Benchmark,
    GeneratorSpec,
    Sample,
    Track,
    benchmark_files,
    list_benchmarks,
    load_benchmark,
)
from frugalbench.benchmarks.prepare import ensure_prepared
from frugalbench.benchmarks.subsets import select_subset, subset_id

__all__ = ['ANNOTATION_KINDS', 'REFERENCE_KEYS', 'AnnotationKind', 'Benchmark', 'GeneratorSpec', 'Sample',
           'Track', 'benchmark_files', 'ensure_prepared', 'list_benchmarks', 'load_benchmark',
           'select_subset', 'subset_id']
