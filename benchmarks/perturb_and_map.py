r"""How far Perturb-and-MAP is from exact sampling on a 3 x 3 Ising model.

Perturb-and-MAP (Papandreou and Yuille 2011) adds i.i.d. Gumbel noise to every unary
potential and returns the MAP state (here exact, by max-product over columns). Without
couplings that is Gumbel-max per site, an exact sampler; with couplings it is not. For the
3 x 3 ferromagnetic Ising model of the ``mrf`` task (field_scale 0.5, model seed 0) at three
coupling strengths, this draws N samples by Perturb-and-MAP and N exact samples (Gumbel-max
over the 512 joint states) and compares each with p's exact marginals (transfer matrix) and
exact joint: mean and max absolute error of the site marginals, and the total variation
distance of the empirical joint. The exact sampler's row is the Monte Carlo noise floor.

Usage (from the repository root)::

    .venv/bin/python benchmarks/perturb_and_map.py      # writes docs/perturb_and_map.md
"""
from __future__ import annotations

import argparse
import datetime
import shlex
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from primitives.io import write_atomic
from primitives.sampling import perturb_and_map
from tasks.grid import Grid

COUPLINGS = (0.25, 1.0, 2.0)


def errors(grid: Grid, states: torch.Tensor) -> dict[str, float]:
    """Marginal and joint errors of samples [N, 3, 3] against p."""
    _, exact = grid.exact()
    marginal = F.one_hot(states, 2).double().mean(0)
    everything = grid.all_states()
    code = (states.reshape(len(states), -1) * 2 ** torch.arange(8, -1, -1)).sum(-1)
    empirical = torch.bincount(code, minlength=len(everything)).double() / len(states)
    joint = torch.softmax(-grid.state_energy(everything), 0)
    return {
        "mae": (marginal - exact).abs().mean().item(),
        "max": (marginal - exact).abs().max().item(),
        "tv": 0.5 * (empirical - joint).abs().sum().item(),
    }


def rows(samples: int, seed: int) -> list[dict]:
    out = []
    for coupling in COUPLINGS:
        grid = Grid.potts(3, 3, 2, 0.5, coupling, "ferromagnetic", seed=0)
        torch.manual_seed(seed)
        pm = errors(grid, perturb_and_map(grid.fields, grid.map_state, (samples,)))
        exact = errors(grid, grid.sample((samples,)))
        out.append({"coupling": coupling, "pm": pm, "exact": exact})
    return out


def render(table: list[dict], samples: int) -> str:
    lines = [
        "# Perturb-and-MAP vs exact sampling (3 x 3 Ising)",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        f"- command: `{shlex.join(['python', *sys.argv])}`",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}; N = {samples} samples per sampler",
        "- coupling: J = coupling * I for neighbours (the Ising coupling in +-1 spins is coupling / 2)",
        "",
        "| coupling | sampler | marginal error, mean | marginal error, max | total variation of the joint |",
        "|---:|---|---:|---:|---:|",
    ]
    for row in table:
        for name, key in (("Perturb-and-MAP", "pm"), ("exact (Gumbel-max over joint states)", "exact")):
            e = row[key]
            lines.append(f"| {row['coupling']} | {name} | {e['mae']:.4f} | {e['max']:.4f} | {e['tv']:.4f} |")
    lines += [
        "",
        "Compare each Perturb-and-MAP row with the exact sampler's row below it (the Monte Carlo noise "
        "floor at this N): with unary-only Gumbel perturbations the MAP is not a sample of p once sites "
        "are coupled, and the gap widens with the coupling. "
        "tests/test_sampling.py checks both ends: exact without couplings, detectably biased at coupling 2.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000, help="samples per sampler and coupling")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=Path("docs/perturb_and_map.md"))
    args = parser.parse_args(argv)
    page = render(rows(args.samples, args.seed), args.samples)
    print(page)
    write_atomic(args.output, page)  # never a half-written page
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
