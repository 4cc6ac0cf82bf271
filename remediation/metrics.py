"""/metrics: the health snapshot as Prometheus metrics (prometheus_client, labels escaped).

A collector over the newest snapshot: scraping reads one stored row (or computes the
figures without storing them when no recent snapshot exists) and never writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.db.models import Count
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from remediation.models import Alert
from remediation.selectors.health import current_snapshot

WINDOWS = ("1h", "24h", "7d")


def _gauge(name: str, doc: str, labels: list[str], samples: list[tuple[list[str], Any]]) -> Metric:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in samples:
        if value is not None:
            family.add_metric(values, float(value))
    return family


class SnapshotCollector(Collector):
    """The dashboard's figures, one gauge family each."""

    def collect(self) -> Iterator[Metric]:
        snap = current_snapshot()
        per_window = {w: snap.figures["windows"][w] for w in WINDOWS}
        day = {**per_window["24h"], **snap.figures["shared"]}
        by_window = [(w, f) for w, f in per_window.items()]
        yield _gauge(
            "prism_sessions_completed",
            "Sessions completed in the window.",
            ["window"],
            [([w], f["completed"]) for w, f in by_window],
        )
        yield _gauge(
            "prism_conversion_ratio",
            "Completed sessions in the window that have a profile / completed.",
            ["window"],
            [([w], f["conversion"]) for w, f in by_window],
        )
        yield _gauge(
            "prism_orphans",
            "Completed sessions in the window without a profile.",
            ["window"],
            [([w], f["orphans_in_window"]) for w, f in by_window],
        )
        yield _gauge(
            "prism_fc_fallback_ratio",
            "Finalizes (24 h) that used the legacy FC fallback.",
            [],
            [([], day["fallback_rate"])],
        )
        yield _gauge(
            "prism_fc_scoring_success_ratio",
            "FC scoring attempts (24 h) that succeeded.",
            [],
            [([], day["fc_success_rate"])],
        )
        yield _gauge(
            "prism_profile_write_errors",
            "Profile write errors (24 h) by SQLSTATE and constraint.",
            ["sqlstate", "constraint"],
            [([e["sqlstate"], e["constraint_name"]], e["n"]) for e in day["write_errors"]],
        )
        yield _gauge(
            "prism_profiles",
            "Profiles per results_version.",
            ["results_version"],
            [([v], n) for v, n in day["profiles_per_version"].items()],
        )
        yield _gauge(
            "prism_version_drift_profiles",
            "Profiles written (24 h) with a results_version other than configured.",
            [],
            [([], day["version_drift"])],
        )
        yield _gauge(
            "prism_legacy_fc_scores",
            "fc_scores rows with kind != functions or version != v1.2.",
            [],
            [([], day["legacy_fc_scores"])],
        )
        yield _gauge(
            "prism_results_messages",
            "Results notifications settled in the window, by state (sent, failed, skipped, unknown).",
            ["window", "state"],
            [
                ([w, state], f.get(f"notify_{state}"))
                for w, f in by_window
                for state in ("sent", "failed", "skipped", "unknown")
            ],
        )
        yield _gauge(
            "prism_results_message_failure_ratio",
            "Results messages that failed / (sent + failed), in the window.",
            ["window"],
            [([w], f.get("notify_failure_rate")) for w, f in by_window],
        )
        open_alerts = Alert.objects.filter(state="open").values("severity").annotate(n=Count("id"))
        yield _gauge(
            "prism_alerts_open",
            "Open alerts by severity.",
            ["severity"],
            [([r["severity"]], r["n"]) for r in open_alerts],
        )


def render() -> bytes:
    """The Prometheus text exposition of the snapshot."""
    # Long on purpose: one gauge family per dashboard figure, in the dashboard's order.
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector())
    return generate_latest(registry)
