"""The design report: what an ethics committee or a statistical analysis plan needs, as one HTML.

:func:`design_report` recomputes every number from the design (and, optionally, a grid's
table) at build time and returns a :class:`DesignReport`: sections of plain-language text,
tables and figures. :meth:`DesignReport.to_html` renders one self-contained HTML page (figures
embedded as SVG, no scripts, no network access needed to view it). Every number shown goes
through :func:`number`, so a reader — or a test — can match it to the library's output.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from typing import Any

from trialkit.constants import VERSION
from trialkit.errors import TrialkitError
from trialkit.results import Result


def number(value: Any) -> str:
    """Format a number as the report shows it: integers whole, others to 4 significant digits.

    Examples
    --------
    >>> number(512), number(0.54831), number(1244.5), number(None)
    ('512', '0.5483', '1244', '–')
    """
    if value is None or (isinstance(value, float) and value != value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()
                                  and abs(value) >= 1000):
        return str(int(value))
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass
class Section:
    """One part of the report: a heading, paragraphs, tables (columns, rows) and SVG figures."""

    heading: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, list[str], list[list[Any]]]] = field(default_factory=list)
    figures: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class DesignReport(Result):
    """A design's report (:func:`design_report`); :meth:`to_html` renders it."""

    title: str
    design: str
    kind: str
    sha256: str
    version: str
    seed: int
    reps: int
    sections: list[Section]

    def to_dict(self) -> dict[str, Any]:
        """Return the report's plain form: metadata and the sections' tables."""
        return {"title": self.title, "design": self.design, "kind": self.kind,
                "sha256": self.sha256, "version": self.version, "seed": self.seed,
                "reps": self.reps,
                "sections": [{"heading": s.heading, "text": s.text,
                              "tables": [{"caption": c, "columns": cols, "rows": rows}
                                         for c, cols, rows in s.tables]}
                             for s in self.sections]}

    def to_html(self) -> str:
        """Render the report as one self-contained HTML page."""
        body = [f"<h1>{html.escape(self.title)}</h1>",
                f"<p class='meta'>Design <b>{html.escape(self.design)}</b> ({self.kind}) · "
                f"SHA-256 <code>{self.sha256}</code> · trialkit {html.escape(self.version)} · "
                f"seed {self.seed}</p>"]
        for s in self.sections:
            body.append(f"<h2>{html.escape(s.heading)}</h2>")
            body += [f"<p>{html.escape(t)}</p>" for t in s.text]
            figures = [f"<figure>{svg}<figcaption>{html.escape(caption)}</figcaption>"
                       "</figure>" for caption, svg in s.figures]
            tables = [_table(caption, columns, rows) for caption, columns, rows in s.tables]
            body += figures + tables if s.heading.startswith("Operating characteristics "
                                                            "across") else tables + figures
        return _PAGE.format(title=html.escape(self.title), body="\n".join(body))

    def to_pdf(self) -> bytes:
        """Render the report as a PDF: the same page laid out on A4 by WeasyPrint (vector figures).

        Raises
        ------
        TrialkitError
            When WeasyPrint (the optional ``pdf`` extra) or the Pango library it needs is missing.
        """
        try:
            import weasyprint
        except ImportError:
            raise TrialkitError("a PDF report needs WeasyPrint — install it with pip install "
                                "'trialkit[pdf]', or write the report as .html") from None
        except OSError as exc:   # WeasyPrint loads Pango when imported
            detail = " ".join(str(exc).split())[:100]
            raise TrialkitError(f"WeasyPrint cannot start ({detail}) — install the Pango "
                                "library (Debian: libpango-1.0-0 libpangoft2-1.0-0), or write "
                                "the report as .html") from None
        return bytes(weasyprint.HTML(string=self.to_html()).write_pdf())

    def save(self, path: Any) -> str:
        """Write the report to ``path``: a PDF if it ends in ``.pdf``, else the HTML page."""
        import os

        path = os.fspath(path)
        if path.lower().endswith(".pdf"):
            data = self.to_pdf()
            with open(path, "wb") as fb:
                fb.write(data)
            return path
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_html())
        return path


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; max-width: 75em; margin: 2em auto; color: #222; }}
h1 {{ font-size: 1.7em; }} h2 {{ border-bottom: 1px solid #ccc; margin-top: 1.6em; }}
table {{ border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }}
th, td {{ border: 1px solid #bbb; padding: 0.2em 0.6em; text-align: left; }}
th {{ background: #eef; }} caption {{ text-align: left; font-weight: bold; padding: 0.3em 0; }}
.meta {{ color: #555; font-size: 0.9em; }} figure {{ margin: 1em 0; }}
figure svg {{ max-width: 100%; height: auto; }}
@page {{ size: A4; margin: 1.6cm 1.4cm; }}
h2 {{ break-after: avoid; }} tr, figure {{ break-inside: avoid; }}
</style></head><body>
{body}
</body></html>
"""


def _table(caption: str, columns: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    lines = ["".join(f"<td>{html.escape(number(v))}</td>" for v in row) for row in rows]
    body = "".join(f"<tr>{line}</tr>" for line in lines)
    return (f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def svg(fig: Any) -> str:
    """Return a matplotlib figure as inline SVG text (and close it)."""
    from trialkit.plotting import pyplot

    buf = io.StringIO()
    try:
        fig.savefig(buf, format="svg")
    finally:
        pyplot().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


# -- one kind each ------------------------------------------------------------------------------
def _factorial(design: Any, reps: int, seed: int) -> list[Section]:
    from trialkit.factorial.planning import (
        factorial_design_power,
        factorial_design_sample_size,
        factorial_power_curve,
    )

    s = design.sample
    what = Section("What the design is", [
        f"A factorial experiment of {len(design.factors)} components, each switched on or off; "
        f"participants are randomised to the conditions ({design.randomisation.method} "
        "randomisation). The planned analysis is an effect-coded regression with "
        f"interactions up to order {design.analysis.model_order}."])
    what.tables.append(("Components", ["component", "label", "cost"],
                        [[f.name, f.label or f.name, f.cost] for f in design.factors]))
    what.tables.append(("Outcomes", ["outcome", "type", "label"],
                        [[o.name, o.type, o.label or o.name] for o in design.outcomes]))
    what.tables.append(("Sample", ["enrolled", "drop-out", "alpha", "target power"],
                        [[s.n_total, s.dropout, design.analysis.alpha, design.analysis.power]]))
    power = Section("Power and sample size")
    for out in design.outcomes:
        res = factorial_design_power(design, outcome=out.name)
        power.tables.append((f"Power of each effect on {out.name} with {res['n_total']} "
                             "enrolled", ["term", "effect", "power"],
                             [[e["term"], e["effect"], e["power"]] for e in res["effects"]]))
    need = factorial_design_sample_size(design)
    power.text.append(f"For {need['target_power']:.0%} power for every main effect on "
                      f"{need['outcome']}, {need['n_total']} participants are needed (the "
                      f"smallest effect, {need['limiting_term']}, sets the number).")
    curve = factorial_power_curve(design, max(16, s.n_total // 4), 2 * need["n_total"])
    power.figures.append(("Power of each effect against the number enrolled", svg(curve.plot())))
    return [what, power]


def _mrt(design: Any, reps: int, seed: int) -> list[Section]:
    from trialkit.mrt.planning import mrt_power, mrt_sample_size
    from trialkit.mrt.plots import design_figure

    sc = design.schedule
    what = Section("What the design is", [
        f"A micro-randomised trial: at each of {sc.decisions_per_day} decision points a day for "
        f"{sc.days} days an available participant is randomised to {design.treatment}."])
    what.tables.append(("Outcomes", ["outcome", "type", "label"],
                        [[o.name, o.type, o.label or o.name] for o in design.outcomes]))
    need = mrt_sample_size(design)
    at = mrt_power(design, need["n_participants"])
    power = Section("Power and sample size", [
        f"{need['n_participants']} participants give power {number(at['power'])} "
        f"(target {number(design.power)}, alpha {number(design.alpha)})."])
    power.tables.append(("Sample size", ["participants", "exact solution", "power"],
                         [[need["n_participants"], need["n_exact"], need["power"]]]))
    power.figures.append(("Effect and availability over the trial, and power against N",
                          svg(design_figure(design, n_marked=need["n_participants"]))))
    return [what, power]


_OC = ["prob_superior", "prob_equivalence", "prob_futility", "prob_max", "size_mean", "idp"]


def _adaptive(design: Any, reps: int, seed: int) -> list[Section]:
    from trialkit.adaptive import check_performance, run_trials, setup_trial

    what = Section("What the design is", [
        f"A multi-arm trial of {len(design.arms)} arms with {len(design.looks.data)} interim "
        "analyses; allocation probabilities are updated at each analysis and arms are dropped "
        "or the trial stopped by the posterior probability rules below."])
    what.tables.append(("Arms", ["arm", "label"], [[a.name, a.label or a.name]
                                                    for a in design.arms]))
    what.tables.append(("Analyses", ["look", "with outcome data", "randomised"],
                        [[i + 1, d, r] for i, (d, r) in
                         enumerate(zip(design.looks.data, design.looks.randomised,
                                       strict=True))]))
    oc = Section("Operating characteristics by simulation", [
        f"{reps} simulated trials per scenario (seed {seed}): probabilities of stopping for "
        "superiority, equivalence or futility, of reaching the maximum sample size, the "
        "expected sample size and the ideal design percentage (IDP)."])
    rows, first = [], None
    for name in design.scenarios:
        res = run_trials(setup_trial(design, name), reps, seed)
        perf = check_performance(res)
        rows.append([name, *(perf[k] for k in _OC)])
        first = first or res
    oc.tables.append(("Operating characteristics", ["scenario", *_OC], rows))
    if first is not None:
        oc.figures.append((f"Allocation probabilities, stopping and selection "
                           f"({first.spec.scenario})", svg(first.plot())))
    return [what, oc]


KINDS = {"factorial": _factorial, "mrt": _mrt, "adaptive": _adaptive}


def _grid(frame: Any) -> Section:
    """Return the grid's operating characteristics: a plot by cell and a table."""
    sec = Section("Operating characteristics across the grid", [
        "Every cell of the grid was simulated with its own random streams; each estimate is "
        "the mean over the cell's replicates with its Monte Carlo standard error (MC SE). Rows "
        "marked assurance average over the design prior instead of fixing the assumed value."])
    keep = frame[frame.metric.str.startswith(("power", "prob_superior", "expected_n"))]
    axes = [c for c in frame.columns[6:] if c not in ("assurance", "prior", "reps", "seed",
                                                     "metric", "estimate", "mc_se")]
    cols = ["cell", "design", "scenario", *axes, "assurance", "reps", "metric", "estimate",
            "MC SE"]
    rows = [[r["cell"], r["design"], r["scenario"], *(r[a] for a in axes), r["assurance"],
             r["reps"], r["metric"], r["estimate"], r["mc_se"]]
            for r in keep.to_dict("records")]
    sec.figures.append(("Estimates with ±2 MC SE by cell", svg(_grid_figure(keep))))
    sec.tables.append(("Grid results", cols, rows))
    return sec


def _grid_figure(frame: Any) -> Any:
    from trialkit.plotting import pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.5))
    probs = frame[~frame.metric.str.startswith("expected") & ~frame.metric.str.contains(":")]
    for metric, part in probs.groupby("metric", sort=False):
        ax.errorbar(part.cell, part.estimate, yerr=2 * part.mc_se, fmt="o", capsize=3,
                    label=str(metric))
    ax.set_xlabel("cell")
    ax.set_ylabel("estimate")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def design_report(design: Any, grid: Any = None, reps: int = 1000, seed: int = 0
                  ) -> DesignReport:
    """Build the report of ``design`` (and of a grid's table ``grid``, a DataFrame).

    Parameters
    ----------
    design : Design
        A loaded design of any kind.
    grid : pandas.DataFrame, optional
        A grid's tidy table (:meth:`trialkit.study.grid.GridResult.to_frame`, or read back from
        its Parquet or CSV file); its rows for this design's cells and all others are shown.
    reps, seed : int
        Simulated trials per scenario and their seed (adaptive designs).
    """
    sections = KINDS[design.kind](design, reps, seed)
    if grid is not None and len(grid):
        sections.insert(0, _grid(grid))
    intro = Section("About this report", [design.header.description.strip()] if
                    design.header.description.strip() else [])
    sections.insert(0, intro)
    sections.append(Section("Assumptions", [
        "Effects, variability, drop-out and scenarios are those written in the design file "
        f"{design.source.path} (SHA-256 {design.source.sha256}); every number in this report "
        f"was recomputed from it by trialkit {VERSION} when the report was built.",
        f"Simulations use seed {seed}; replicate i draws from its own stream (seed, i), so "
        "they are reproducible on any machine."]))
    return DesignReport(title=f"Design report: {design.header.title}", design=design.name,
                        kind=design.kind, sha256=design.source.sha256, version=VERSION,
                        seed=seed, reps=reps, sections=sections)
