"""Cascades of submissions (FrugalML, Chen, Zaharia and Zou, NeurIPS 2020), for segmentation.

A cascade calls its cheap member first, reads the confidence of the answer (a gate statistic the
harness computes from the member's confidence histogram) and escalates the image to the next
member when the confidence is low. Thresholds are fitted on val only, applied to test; its cost is
derived from the members' measured figures. ``policy`` is the pure part (gates, routing, cost,
fitting), ``store`` what it reads and writes, ``evaluate`` the orchestration (docs/cascades.md).
"""
