"""Fractional factorial designs: construction, resolution by brute force, aliasing, design show."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialkit.design.fractions import (
    alias_structure,
    defining_relation,
    fraction_matrix,
    generators_for_resolution,
    max_resolution,
    min_runs,
    resolution,
    word_length_pattern,
)
from trialkit.errors import TrialkitError


def brute_force_resolution(codes: np.ndarray) -> int | None:
    """Shortest set of columns whose product is constant over all runs (None: full factorial)."""
    k = codes.shape[1]
    for size in range(1, k + 1):
        for combo in itertools.combinations(range(k), size):
            prod = np.prod(codes[:, combo].astype(int), axis=1)
            if np.all(prod == prod[0]):
                return size
    return None


# Minimum-aberration catalogue facts (docs/references.md; Chen, Sun & Wu 1993): the
# minimum-aberration design of k factors in N runs has resolution R.
CATALOGUE = [(5, 16, 5), (6, 16, 4), (7, 16, 4), (8, 16, 4), (6, 32, 6), (7, 32, 4),
             (8, 64, 5), (10, 128, 5), (11, 128, 5), (12, 128, 4)]


@pytest.mark.parametrize(("k", "runs", "res"), CATALOGUE)
def test_catalogue_run_sizes_and_resolutions(k, runs, res):
    assert max_resolution(k, runs) == res
    gens = generators_for_resolution(k, res, runs)
    codes = fraction_matrix(k, gens)
    assert codes.shape == (runs, k)
    assert resolution(k, gens) == res
    assert brute_force_resolution(codes) == res
    # every condition distinct and every column balanced
    assert len({tuple(r) for r in codes}) == runs
    assert np.all(codes.sum(axis=0) == 0)


def test_catalogue_resolution_cannot_be_raised():
    for k, runs, res in CATALOGUE:
        with pytest.raises(TrialkitError, match="use at least|higher than"):
            generators_for_resolution(k, res + 1, runs)


def test_fewest_runs_by_resolution():
    # MOST RelativeCosts1's table / the catalogue: fewest runs for resolution III, IV, V
    assert [min_runs(7, r) for r in (3, 4, 5)] == [8, 16, 64]
    assert [min_runs(9, r) for r in (3, 4, 5)] == [16, 32, 128]
    assert fraction_matrix(9, generators_for_resolution(9, 4)).shape == (32, 9)


def test_minimum_aberration_word_length_patterns():
    # Known minimum-aberration patterns (A_4, A_5, ...): 2^(7-2) IV has A4 = 1, A5 = 2;
    # 2^(8-2) V has A5 = 2, A6 = 1; 2^(6-2) IV has A4 = 3.
    assert word_length_pattern(7, generators_for_resolution(7, 4, 32))[3:5] == [1, 2]
    assert word_length_pattern(8, generators_for_resolution(8, 5, 64))[4:6] == [2, 1]
    assert word_length_pattern(6, generators_for_resolution(6, 4, 16))[3] == 3


@settings(max_examples=40, deadline=None)
@given(k=st.integers(4, 9), res=st.integers(3, 6), extra=st.integers(0, 2))
def test_every_generated_fraction_has_its_resolution_by_brute_force(k, res, extra):
    if res > k:
        with pytest.raises(TrialkitError, match="higher than"):
            generators_for_resolution(k, res)
        return
    runs = min(min_runs(k, res) * 2**extra, 2**k)
    gens = generators_for_resolution(k, res, runs)
    codes = fraction_matrix(k, gens)
    assert codes.shape[0] == runs
    found = brute_force_resolution(codes)
    if gens:
        assert found is not None and found >= res
        assert found == resolution(k, gens)
    else:
        assert found is None


@pytest.mark.parametrize(("k", "res", "runs"), [(10, 4, 32), (20, 4, 64), (14, 3, 16)])
def test_large_or_budget_limited_searches_keep_their_resolution(k, res, runs):
    gens = generators_for_resolution(k, res, runs, budget=50)
    codes = fraction_matrix(k, gens)
    assert codes.shape == (runs, k)
    assert brute_force_resolution(codes) >= res


def test_budget_exhausted_search_still_finds_a_resolution_vi_design():
    # 20 factors in 1024 runs at resolution VI exist (a [20, 10, 6] binary linear code; MOST
    # RelativeCosts1's table); the depth-first search alone runs out of budget here
    gens = generators_for_resolution(20, 6, 1024)
    assert len(gens) == 10
    assert resolution(20, gens) >= 6
    assert brute_force_resolution(fraction_matrix(20, gens)) >= 6


def test_half_fraction_uses_the_single_longest_word():
    assert generators_for_resolution(5, 5) == ("E = ABCD",)
    gens = generators_for_resolution(26, 7)
    assert gens == ("Z = " + "ABCDEFGHIJKLMNOPQRSTUVWXY",)
    assert resolution(26, gens) == 26


def test_design_file_resolution_above_k_is_one_line(run, tmp_path, designs_dir):
    text = (designs_dir / "app-components-fraction.toml").read_text()
    path = tmp_path / "toohigh.toml"
    for res in (8, 9):
        path.write_text(text.replace('generators = ["F = ABCD", "G = ABDE"]',
                                     f"resolution = {res}"))
        out = run("design", "show", path)
        assert out.exit_code == 2
        lines = out.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error:")
        assert "fraction.resolution" in lines[0] and "[3, 7]" in lines[0]


def test_defining_relation_and_aliases_of_the_example_fraction():
    gens = ("F = ABCD", "G = ABDE")
    words = {m for _, m in defining_relation(7, gens)}
    as_text = {"".join(ch for i, ch in enumerate("ABCDEFG") if m >> i & 1) for m in words}
    assert as_text == {"ABCDF", "ABDEG", "CEFG"}
    aliases = {a["term"]: a["aliases"] for a in alias_structure(7, gens)}
    assert aliases["A"] == []            # resolution IV: main effects clear of 2FIs
    assert aliases["CE"] == ["FG"]
    assert sorted(aliases["FG"]) == ["CE"]


def test_negative_generator_sign_flows_into_the_relation():
    rel = defining_relation(4, ("D = -ABC",))
    assert rel == [(-1, 0b1111)]
    codes = fraction_matrix(4, ("D = -ABC",))
    assert np.all(np.prod(codes.astype(int), axis=1) == -1)
    aliases = {a["term"]: a["aliases"] for a in alias_structure(4, ("D = -ABC",))}
    assert aliases["A"] == [] and aliases["AB"] == ["-CD"]


def test_design_show_prints_relation_resolution_and_aliases(run, designs_dir):
    res = run("design", "show", designs_dir / "app-components-fraction.toml", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    frac = data["fraction"]
    assert frac["defining_relation"] == "I = CEFG = ABCDF = ABDEG"
    assert frac["resolution"] == 4
    assert data["n_conditions"] == 32
    assert {"term": "CE", "aliases": ["FG"]}.items() <= frac["aliases"][0].items()


def test_fraction_by_resolution_in_a_design_file(run, tmp_path, designs_dir):
    text = (designs_dir / "app-components-fraction.toml").read_text()
    text = text.replace('generators = ["F = ABCD", "G = ABDE"]', "resolution = 4")
    path = tmp_path / "byres.toml"
    path.write_text(text)
    res = run("design", "show", path, "--format", "json")
    assert res.exit_code == 0, res.output
    frac = json.loads(res.output)["fraction"]
    assert frac["resolution"] == 4 and frac["requested_resolution"] == 4
    assert json.loads(res.output)["n_conditions"] == 16   # fewest runs for 7 factors at IV
    path.write_text(text.replace("resolution = 4", "resolution = 4\nruns = 32"))
    res = run("design", "show", path, "--format", "json")
    data = json.loads(res.output)
    assert data["n_conditions"] == 32 and data["fraction"]["word_length_pattern"][3:5] == [1, 2]


def test_unreachable_resolution_in_runs_is_a_clear_error(run, tmp_path, designs_dir):
    text = (designs_dir / "app-components-fraction.toml").read_text()
    text = text.replace('generators = ["F = ABCD", "G = ABDE"]', "resolution = 5\nruns = 32")
    path = tmp_path / "bad.toml"
    path.write_text(text)
    res = run("design", "show", path)
    assert res.exit_code == 2
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:")
    assert "resolution" in lines[0] and "64" in lines[0]
