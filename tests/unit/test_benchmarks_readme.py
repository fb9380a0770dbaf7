"""benchmarks/make_readme.py: benchmarks/README.md and README.md's headline figures are what the
generator writes from benchmarks/results/, and a result without provenance is refused."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from tests.conftest import ROOT

stamp_spec = importlib.util.spec_from_file_location("stamp", ROOT / "benchmarks/stamp.py")
stamp = importlib.util.module_from_spec(stamp_spec)
stamp_spec.loader.exec_module(stamp)
spec = importlib.util.spec_from_file_location("make_readme", ROOT / "benchmarks/make_readme.py")
make_readme = importlib.util.module_from_spec(spec)
sys.modules["make_readme"] = make_readme  # its dataclass looks its module up
spec.loader.exec_module(make_readme)

FIX = "run `python benchmarks/make_readme.py` and commit what it writes"


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    return make_readme.load_results(ROOT / "benchmarks" / "results")


def test_benchmarks_readme_is_what_the_generator_writes(results):
    # given every committed results file; when the generator renders them
    expected = make_readme.benchmarks_readme(results, ROOT / "benchmarks" / "results")
    # then benchmarks/README.md holds exactly that
    written = (ROOT / "benchmarks" / "README.md").read_text(encoding="utf-8")
    assert written == expected, f"benchmarks/README.md is stale: {FIX}"


def test_readme_headline_block_is_what_the_generator_writes(results):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(make_readme.HEADLINE_START)
    end = readme.index(make_readme.HEADLINE_END) + len(make_readme.HEADLINE_END)
    assert readme[start:end] == make_readme.headline_block(results), (
        f"README.md's headline figures are stale: {FIX}"
    )


def test_every_headline_figure_links_to_a_results_file(results):
    for figure, _, source in make_readme.headline_rows(results):
        name = source.split("](benchmarks/results/")[1].split(")")[0]
        assert name in results, f"{figure!r} cites {name}, not a results file"


def test_a_result_without_provenance_is_refused_naming_the_file(tmp_path):
    # given a results folder where one file was written without provenance
    stamp = {"commit": "0" * 40, "params_md5": "0" * 32, "machine": "test", "stamped": False}
    (tmp_path / "stamped.json").write_text(json.dumps({"x": 1, "provenance": stamp}))
    (tmp_path / "unstamped.json").write_text(json.dumps({"x": 1}))
    # when the generator reads it, then it stops and says which file and how to fix it
    with pytest.raises(make_readme.ResultsError, match=r"unstamped\.json: no provenance") as error:
        make_readme.load_results(tmp_path)
    assert "stamp.py" in str(error.value)


def test_a_results_file_without_a_section_is_still_listed(tmp_path):
    stamp = {"commit": "a" * 40, "params_md5": "b" * 32, "machine": "test", "stamped": True}
    data = {"speedup": 2.5, "rows": [{"n": 1, "s": 0.5}], "provenance": stamp}
    (tmp_path / "new_benchmark.json").write_text(json.dumps(data))
    text = make_readme.benchmarks_readme(make_readme.load_results(tmp_path), tmp_path)
    assert "### `new_benchmark.json`" in text
    assert "commit `aaaaaaa` (stamped later)" in text
    assert "| `speedup` | 2.5 |" in text


@pytest.mark.parametrize(
    "text",
    ['{\n  "a": 1,\n  "b": [1, 2]\n}\n', '{\n "a": {\n  "x": 0.5\n }\n}\n', '{"a": 1}'],
    ids=["indent-2", "indent-1", "one-line"],
)
def test_stamping_adds_provenance_and_keeps_every_other_byte(text):
    given = {"commit": "c" * 40, "params_md5": "d" * 32, "machine": "m", "stamped": True}
    stamped = stamp.with_provenance(text, given)
    assert json.loads(stamped) == {**json.loads(text), "provenance": given}
    head = text.rstrip()[:-1].rstrip()
    assert stamped.startswith(head) and stamped.endswith(text[len(text.rstrip()) :])
