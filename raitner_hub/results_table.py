"""The comparison table of a ``raitner reproduce`` run: per benchmark and averaged, mean and standard deviation
over seeds, vanilla vs RA-IT and their difference, the paper's numbers side by side (paper column order).

Input: the ``results.json`` of every evaluation stage with the (size, seed, arm, mode) it belongs to. Output:
``results.json`` (everything, machine-readable), ``results.md``, ``results.png`` (grouped bars with the seed
spread as error bars) and a dataset card (``dataset_cards/reproduce_results.md.j2``). Standard deviation is
the sample standard deviation over seeds (n - 1; 0 with one seed).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from raitner_hub.evaluate import MODE_TITLES
from raitner_hub.recipe import Recipe, size_label

METRICS = ("uniner_f1", "strict_f1")
METRIC_TITLES = {"uniner_f1": "UniNER micro-F1 (%)", "strict_f1": "strict span micro-F1 (%)"}


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "values": values,
        "mean": round(statistics.fmean(values), 2),
        "std": round(statistics.stdev(values), 2) if len(values) > 1 else 0.0,
    }


def benchmark_order(recipe: Recipe) -> list[str]:
    """The recipe's benchmarks, in the paper's column order when the recipe compares with a paper table."""
    names = list(recipe.benchmarks.names)
    if not recipe.paper_table:
        return names
    from raitner_hub.paper_results import COLUMNS

    paper = [n for n in COLUMNS[recipe.paper_table].values() if n in names]
    return paper + [n for n in names if n not in paper]


def assemble(recipe: Recipe, reports: Sequence[tuple[dict, dict]], facts: dict, notes: Sequence[str]) -> dict:
    """``reports``: (stage meta with size/seed/arm/mode, evaluation results.json) pairs."""
    from raitner_hub import paper_results

    order = benchmark_order(recipe)
    by_cell: dict[str, dict[tuple, dict[int, dict]]] = {}
    for meta, res in reports:
        scores = {name: {m: res["datasets"][name][m] for m in METRICS} for name in order}
        scores["average"] = {m: res["average"][m] for m in METRICS}
        by_cell.setdefault(meta["mode"], {}).setdefault((meta["size"], meta["arm"]), {})[meta["seed"]] = scores
    vanilla = next((a for a in recipe.arms if a.strategy is None), None)
    modes = {}
    for mode in recipe.evaluation.modes:
        cells = by_cell.get(mode.name, {})
        rows: list[dict[str, Any]] = []
        for size in recipe.data.sizes:
            for arm in recipe.arms:
                per_seed = cells.get((size, arm.name), {})
                seeds = sorted(per_seed)
                scores = (
                    {
                        name: {m: _summary([per_seed[s][name][m] for s in seeds]) for m in METRICS}
                        for name in [*order, "average"]
                    }
                    if seeds
                    else {}
                )
                paper = (
                    paper_results.paper_row(recipe.paper_table, size, arm.paper)
                    if recipe.paper_table and arm.paper and mode.mode == "none"
                    else None
                )
                rows.append(
                    {
                        "size": size,
                        "arm": arm.name,
                        "strategy": arm.strategy,
                        "k": arm.k,
                        "paper_method": arm.paper,
                        "seeds": seeds,
                        "scores": scores,
                        "paper": {n: paper.get(n) for n in [*order, "average"]} if paper else None,
                    }
                )
        differences = []
        if vanilla is not None:
            for size in recipe.data.sizes:
                base = next(r for r in rows if r["size"] == size and r["arm"] == vanilla.name)
                for row in rows:
                    if row["size"] != size or row["arm"] == vanilla.name or not row["scores"] or not base["scores"]:
                        continue
                    diff = {
                        name: {
                            m: round(row["scores"][name][m]["mean"] - base["scores"][name][m]["mean"], 2)
                            for m in METRICS
                        }
                        for name in [*order, "average"]
                    }
                    paper = None
                    if row["paper"] and base["paper"]:
                        paper = {
                            n: round(row["paper"][n] - base["paper"][n], 2)
                            for n in [*order, "average"]
                            if row["paper"].get(n) is not None and base["paper"].get(n) is not None
                        }
                    differences.append(
                        {"size": size, "arm": row["arm"], "vs": vanilla.name, "difference": diff, "paper": paper}
                    )
        modes[mode.name] = {
            "title": MODE_TITLES[mode.mode],
            "settings": {"mode": mode.mode, "strategy": mode.strategy, "k": mode.k, "pool_size": mode.pool_size},
            "rows": rows,
            "differences": differences,
        }
    return {
        "recipe": recipe.name,
        "description": recipe.description,
        "base_model": _public_model(recipe),
        "lang": recipe.lang,
        "sizes": list(recipe.data.sizes),
        "seeds": list(recipe.data.seeds),
        "arms": [{"name": a.name, "strategy": a.strategy, "k": a.k, "paper": a.paper} for a in recipe.arms],
        "benchmarks": order,
        "benchmark_facts": facts,
        "metrics": list(METRICS),
        "std": "sample standard deviation over seeds (n - 1)",
        "average": "unweighted mean over benchmarks",
        "paper": paper_results.describe(recipe.paper_table) if recipe.paper_table else None,
        "notes": list(notes),
        "modes": modes,
    }


def _public_model(recipe: Recipe) -> str:
    """The base model as tables and cards may show it: a Hub id, never a local absolute path."""
    if not Path(recipe.base_model).is_dir():
        return recipe.base_model
    return recipe.base_model_repo_id or f"{Path(recipe.base_model).name} (a local folder)"


def _titles(results: dict) -> list[str]:
    columns = (results["paper"] or {}).get("columns") or {}
    title_of = {name: title for title, name in columns.items() if name}
    return [title_of.get(n, n) for n in results["benchmarks"]] + ["Avg"]


def _cell(summary: dict | None, paper: float | None) -> str:
    text = "–" if summary is None else f"{summary['mean']:.2f} ± {summary['std']:.2f}"
    return text + (f" [{paper:.2f}]" if paper is not None else "")


def markdown(results: dict) -> str:
    names = [*results["benchmarks"], "average"]
    head = "| size | arm | " + " | ".join(_titles(results)) + " |\n|---|---|" + "---|" * len(names) + "\n"
    lines = [f"# Reproduction: {results['recipe']}", ""]
    if results["description"]:
        lines += [results["description"], ""]
    seeds = ", ".join(map(str, results["seeds"]))
    lines += [
        f"Base model `{results['base_model']}`; each cell: mean ± {results['std']} ({seeds}); "
        f"average = {results['average']}."
    ]
    if results["paper"]:
        lines += [f"Values in [brackets] are the paper's ({results['paper']['source']}), in the paper's column order."]
    lines.append("")
    for mode, block in results["modes"].items():
        for metric in results["metrics"]:
            lines += [f"## {METRIC_TITLES[metric]}, test with {block['title']} (`{mode}`)", "", head.rstrip("\n")]
            for row in block["rows"]:
                arm = row["arm"] + (f" ({row['paper_method']})" if row["paper_method"] else "")
                cells = [
                    _cell(
                        row["scores"].get(n, {}).get(metric) if row["scores"] else None,
                        (row["paper"] or {}).get(n) if metric == "uniner_f1" else None,
                    )
                    for n in names
                ]
                lines.append(f"| {size_label(row['size'])} | {arm} | " + " | ".join(cells) + " |")
            if block["differences"]:
                lines += [
                    "",
                    f"Difference to `{block['differences'][0]['vs']}` (mean over seeds):",
                    "",
                    head.rstrip("\n"),
                ]
                for diff in block["differences"]:
                    cells = [
                        f"{diff['difference'][n][metric]:+.2f}"
                        + (
                            f" [{diff['paper'][n]:+.2f}]"
                            if metric == "uniner_f1" and diff["paper"] and n in diff["paper"]
                            else ""
                        )
                        for n in names
                    ]
                    lines.append(
                        f"| {size_label(diff['size'])} | {diff['arm']} − {diff['vs']} | " + " | ".join(cells) + " |"
                    )
            lines.append("")
    notes = list(results["notes"]) + list((results["paper"] or {}).get("errata") or [])
    if notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in notes] + [""]
    return "\n".join(lines)


def bar_chart(results: dict, path: Path) -> Path:
    """One panel per mode: bars per (size, arm) for every benchmark and the average, error bars = seed std."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*results["benchmarks"], "average"]
    titles = _titles(results)
    modes = list(results["modes"].items())
    fig, axes = plt.subplots(
        len(modes), 1, figsize=(max(6.0, 1.3 * len(names) + 2), 3.2 * len(modes)), dpi=100, squeeze=False
    )
    for ax, (mode, block) in zip(axes[:, 0], modes):
        rows = [r for r in block["rows"] if r["scores"]]
        width = 0.8 / max(1, len(rows))
        for i, row in enumerate(rows):
            xs = [j - 0.4 + width * (i + 0.5) for j in range(len(names))]
            ax.bar(
                xs,
                [row["scores"][n]["uniner_f1"]["mean"] for n in names],
                width=width,
                yerr=[row["scores"][n]["uniner_f1"]["std"] for n in names],
                capsize=2,
                label=f"{row['arm']} {row['size'] if row['size'] is not None else 'all'}",
            )
            if row["paper"]:  # the paper's value of the same cell, a black diamond on the bar
                marks = [(x, row["paper"][n]) for x, n in zip(xs, names) if row["paper"].get(n) is not None]
                ax.scatter(
                    [x for x, _ in marks],
                    [v for _, v in marks],
                    marker="D",
                    color="black",
                    s=16,
                    zorder=3,
                    label="paper" if i == 0 else None,
                )
        ax.set_xticks(list(range(len(names))), titles, rotation=30, ha="right")
        ax.set_ylim(0, 100)
        ax.set_ylabel("UniNER F1 (%)")
        ax.set_title(f"{results['recipe']}: test with {block['title']} ({mode})", fontsize=9)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def results_card(recipe: Recipe, results: dict):
    """The results dataset repo's card: the table itself, what produced it, the paper reference."""
    from raitner_hub.cards import render_dataset_card

    card_data = {
        "language": [recipe.lang],
        "tags": ["ner", "open-ner", "ra-it", "raitner-hub", "evaluation", "reproduction"],
        "pretty_name": f"RA-IT reproduction results: {recipe.name}",
        "raitner": {
            "recipe": recipe.name,
            "base_model": results["base_model"],
            "seeds": list(recipe.data.seeds),
            "sizes": list(recipe.data.sizes),
            "benchmarks": results["benchmarks"],
        },
    }
    namespace = recipe.namespace or "<namespace>"
    return render_dataset_card(
        "reproduce_results",
        card_data,
        pretty_name=card_data["pretty_name"],
        recipe=recipe.name,
        table=markdown(results).split("\n", 1)[1].strip(),
        namespace=namespace,
        arms=[a.name for a in recipe.arms],
        cells=[f"{namespace}/{recipe.name}-<size>-s<seed>-{a.name}" for a in recipe.arms],
    )
