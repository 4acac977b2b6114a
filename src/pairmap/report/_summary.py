"""The summary rows of a report: data, rules, null model, counts, versions, run time."""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd


def _code_list(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, Mapping):
        return ", ".join(f"{html.escape(str(k))}: {_code_list(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(f"<code>{html.escape(str(v))}</code>" for v in value) + "]"
    return f"<code>{html.escape(str(value))}</code>"


def _data_rows(info: Mapping, ap_scores: pd.DataFrame | None) -> list:
    data = dict(info.get("data") or {})
    rows = []
    if "source" in data:
        rows.append(("Data", html.escape(str(data.pop("source")))))
    if ap_scores is not None:
        n = len(ap_scores)
        scored = (
            int(ap_scores["average_precision"].notna().sum())
            if "average_precision" in ap_scores
            else n
        )
        rows.append(("Profiles", f"{n:,} ({scored:,} with an AP score)"))
        data.pop("n_profiles", None)
    if "n_features" in data:
        rows.append(("Features", f"{int(data.pop('n_features')):,}"))
    rows += [(str(k).replace("_", " ").capitalize(), html.escape(str(v))) for k, v in data.items()]
    return rows


def _rule_rows(info: Mapping) -> list:
    params = dict(info.get("average_precision") or {})
    rows = []
    rules = [k for k in ("pos_sameby", "pos_diffby", "neg_sameby", "neg_diffby") if k in params]
    if rules:
        rows.append(
            ("Pairing rules", "<br>".join(f"{k}: {_code_list(params.pop(k))}" for k in rules))
        )
    for key in ("distance", "ties"):
        if key in params:
            rows.append((key.capitalize(), _code_list(params.pop(key))))
    return rows


_NULL_TEXT = {
    "shared": "random rankings of each member's list, draws shared by members of one shape",
    "independent": "random rankings of each member's list, independent draws",
    "permutation": "random relabelings of profiles within each group's pool",
    "auto": "permutation where the AP table allows it, else shared",
}


def _map_rows(info: Mapping, map_results: pd.DataFrame | None) -> list:
    params = info.get("mean_average_precision") or {}
    rows = []
    if "sameby" in params:
        rows.append(("mAP groups (sameby)", _code_list(params["sameby"])))
    null = params.get("null", "shared" if params else None)
    if null is not None:
        rows.append(
            (
                "Null model",
                f"{html.escape(str(null))} "
                f"({_NULL_TEXT.get(str(null), 'see docs/significance.md')})",
            )
        )
    for key, label in (("null_size", "Null size"), ("seed", "Seed")):
        if key in params:
            rows.append((label, f"{int(params[key]):,}"))
    hier = params.get("hierarchical_by")
    if map_results is not None:
        rows.append(
            (
                "Multiple testing",
                "hierarchical FDR by " + _code_list(hier) if hier else "Benjamini-Hochberg",
            )
        )
        rows.append(("Groups", _group_counts(map_results, float(params.get("threshold", 0.05)))))
    return rows


def _group_counts(map_results: pd.DataFrame, threshold: float) -> str:
    n = len(map_results)
    scored = int(map_results["p_value"].notna().sum()) if "p_value" in map_results else n
    sig = int(map_results["below_corrected_p"].sum()) if "below_corrected_p" in map_results else 0
    text = (
        f"{n:,} in the table: {scored:,} scored, {sig:,} significant "
        f"(corrected p &lt; {threshold:g})"
    )
    if scored < n:
        text += f"; {n - scored:,} without a score (n_profiles = 0)"
    return text


def summary_rows(info: Mapping, ap_scores, map_results) -> list[tuple[str, str]]:
    """(label, HTML value) rows of the report's summary.

    Examples
    --------
    >>> rows = summary_rows({"analysis": "activity", "run_time_s": 1.25}, None, None)
    >>> rows
    [('Analysis', 'activity'), ('Run time', '1.2 s')]
    """
    rows = []
    if "analysis" in info:
        rows.append(("Analysis", html.escape(str(info["analysis"]))))
    rows += _data_rows(info, ap_scores)
    rows += _rule_rows(info)
    rows += _map_rows(info, map_results)
    if info.get("versions"):
        rows.append(
            (
                "Versions",
                ", ".join(
                    f"{html.escape(str(k))} {html.escape(str(v))}"
                    for k, v in info["versions"].items()
                ),
            )
        )
    if info.get("run_time_s") is not None:
        rows.append(("Run time", f"{float(info['run_time_s']):.1f} s"))
    if info.get("created"):
        rows.append(("Created", html.escape(str(info["created"]))))
    if info.get("notes"):
        rows.append(("Notes", html.escape(str(info["notes"]))))
    return rows
