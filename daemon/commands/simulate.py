"""``stackmm simulate``: Monte Carlo runs of the pricing models.

- ``stackmm simulate as2008 [--gamma G] [--runs N] [--seed S] [--spread eq30|constant] [--json]``
  reproduces Avellaneda & Stoikov (2008) §3.3 and prints the paper's table columns beside ours.
- ``stackmm simulate compare FILE [--runs N] [--seed S] [--json] [market overrides]`` runs every
  pricing model configured in FILE (a strategy config: each passive line's ``pricing:``; or a
  file with ``models: {name: pricing-block}``) on the same simulated market and paths.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from strategies.models.base import PricingModelConfig
from strategies.simulation import as2008
from strategies.simulation.montecarlo import MarketSpec, ModelPolicy, Policy, StrategyResult, simulate

_COLUMNS = ("spread", "profit", "std_profit", "final_q", "std_final_q")
_HEADERS = ("spread", "profit", "std(profit)", "final q", "std(final q)")


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"stackmm {command}", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="experiment", required=True)

    paper = sub.add_parser("as2008", help="Avellaneda & Stoikov (2008) §3.3: inventory vs symmetric strategy")
    paper.add_argument("--gamma", type=float, action="append", help="risk aversion (repeatable; default 0.1)")
    paper.add_argument(
        "--spread",
        choices=("eq30", "constant"),
        default="eq30",
        help="eq30: the published spread with its time term (default); constant: (2/γ)ln(1+γ/k), the tables'",
    )
    _common(paper)

    compare = sub.add_parser("compare", help="run the pricing models configured in a YAML file")
    compare.add_argument(
        "file", type=Path, help="strategy config (passive_lines[].pricing) or {models: {...}}"
    )
    _common(compare)
    return parser


def _common(parser: argparse.ArgumentParser) -> None:
    defaults = MarketSpec()
    parser.add_argument("--runs", type=int, default=1000, help="Monte Carlo paths (default 1000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--s0", type=float, default=defaults.s0, help="initial mid (default 100)")
    parser.add_argument("--horizon", type=float, default=defaults.horizon, help="T (default 1)")
    parser.add_argument(
        "--sigma", type=float, default=defaults.sigma, help="σ per sqrt(time unit) (default 2)"
    )
    parser.add_argument("--dt", type=float, default=defaults.dt, help="time step (default 0.005)")
    parser.add_argument(
        "--A", type=float, default=defaults.A, help="arrival rate at zero depth (default 140)"
    )
    parser.add_argument(
        "--k", type=float, default=defaults.k, help="arrival decay per price unit (default 1.5)"
    )


def _market(args: argparse.Namespace) -> MarketSpec:
    return MarketSpec(s0=args.s0, horizon=args.horizon, sigma=args.sigma, dt=args.dt, A=args.A, k=args.k)


def _fmt(value: float) -> str:
    return f"{value:8.2f}" if math.isfinite(value) else f"{'-':>8}"


def _table(results: list[StrategyResult], paper: dict[str, as2008.PaperRow] | None) -> str:
    head = f"{'strategy':<12}" + "".join(f"{h:>13}" for h in _HEADERS)
    if paper:
        head += "   | paper:" + "".join(f"{h:>13}" for h in _HEADERS)
    lines = [head]
    for result in results:
        row = result.row()
        line = f"{result.name:<12}" + "".join(f"{_fmt(float(row[c])):>13}" for c in _COLUMNS)
        ref = paper.get(result.name) if paper else None
        if ref is not None:
            line += "   |       " + "".join(f"{_fmt(getattr(ref, c)):>13}" for c in _COLUMNS)
        lines.append(line)
    return "\n".join(lines)


def _run_as2008(args: argparse.Namespace) -> int:
    market = _market(args)
    report: list[dict[str, Any]] = []
    for gamma in args.gamma or [0.1]:
        results = as2008.run(gamma, args.runs, args.seed, market, args.spread)
        paper_rows = as2008.PAPER_TABLES.get(gamma) if market == MarketSpec() else None
        if args.json:
            report.append(
                {
                    "gamma": gamma,
                    "spread_form": args.spread,
                    "runs": args.runs,
                    "seed": args.seed,
                    "paper_spread_term": results[0].extra["paper_spread_term"],
                    "results": [r.row() for r in results],
                    "paper": {k: vars_row(v) for k, v in (paper_rows or {}).items()},
                }
            )
            continue
        print(
            f"Avellaneda–Stoikov (2008) §3.3, γ={gamma}, {args.runs} runs, seed {args.seed},"
            f" spread {args.spread} (s={market.s0}, T={market.horizon}, σ={market.sigma}, dt={market.dt},"
            f" A={market.A}, k={market.k})"
        )
        print(_table(results, paper_rows))
        se = ", ".join(f"{r.name} ±{r.profit_std / math.sqrt(args.runs):.2f}" for r in results)
        print(
            f"(2/γ)ln(1+γ/k) = {results[0].extra['paper_spread_term']:.2f};"
            f" standard error of mean profit: {se}"
        )
        print()
    if args.json:
        print(json.dumps(report, indent=2))
    return 0


def vars_row(row: as2008.PaperRow) -> dict[str, float]:
    """A paper row as a JSON object."""
    return {c: getattr(row, c) for c in _COLUMNS}


def load_models(path: Path) -> dict[str, PricingModelConfig]:
    """Pricing blocks by name from a strategy config or a ``models:`` file."""
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    blocks: dict[str, Any] = {}
    if "models" in data:
        if not isinstance(data["models"], dict):
            raise ValueError(f"{path}: models: expected a mapping of name to pricing block")
        blocks = dict(data["models"])
    for i, line in enumerate(data.get("passive_lines") or []):
        if isinstance(line, dict) and line.get("pricing") is not None:
            blocks[str(line.get("id", f"passive_lines[{i}]"))] = line["pricing"]
    if not blocks:
        raise ValueError(f"{path}: no pricing blocks (models: or passive_lines[].pricing)")
    adapter: TypeAdapter[PricingModelConfig] = TypeAdapter(PricingModelConfig)
    models: dict[str, PricingModelConfig] = {}
    for name, block in blocks.items():
        try:
            models[name] = adapter.validate_python(block)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"{path}: {name}: {problems}") from exc
    return models


def _run_compare(args: argparse.Namespace) -> int:
    market = _market(args)
    try:
        models = load_models(args.file)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"stackmm simulate: {exc}", file=sys.stderr)
        return 2
    policies: list[Policy] = [ModelPolicy(name, config, market) for name, config in models.items()]
    results = simulate(market, policies, args.runs, args.seed)
    if args.json:
        print(
            json.dumps(
                {"runs": args.runs, "seed": args.seed, "results": [r.row() for r in results]}, indent=2
            )
        )
    else:
        print(f"{len(results)} models, {args.runs} runs, seed {args.seed}, market {market}")
        print(_table(results, None))
    return 0


def main(argv: list[str], command: str = "simulate") -> int:
    """Entry point for ``stackmm simulate``."""
    args = _parser(command).parse_args(argv)
    if args.runs < 2:
        print("stackmm simulate: --runs must be at least 2", file=sys.stderr)
        return 2
    if args.experiment == "as2008":
        return _run_as2008(args)
    return _run_compare(args)
