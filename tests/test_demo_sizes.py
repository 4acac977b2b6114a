"""``pairmap demo`` sizes its simulated plates itself: any --n-perturbations works."""

from __future__ import annotations

import pytest

from pairmap.cli import _demo_plates, main
from pairmap.simulate import simulate_screen


@pytest.mark.parametrize(
    ("n_perturbations", "n_replicates"),
    [(1, 2), (100, 4), (92, 4), (93, 4), (400, 4), (20000, 4), (5000, 7)],
)
def test_demo_plates_are_the_fewest_that_fit(n_perturbations, n_replicates):
    n_plates = _demo_plates(n_perturbations, n_replicates)
    kw = dict(
        n_perturbations=n_perturbations,
        n_replicates=n_replicates,
        n_features=2,
        n_active_features=1,
    )
    simulate_screen(n_plates=n_plates, **kw)  # fits
    if n_plates > n_replicates:  # and one plate fewer would not
        with pytest.raises(ValueError, match="more than the 384"):
            simulate_screen(n_plates=n_plates - 1, **kw)


def test_demo_with_many_perturbations_runs(tmp_path, capsys):
    # 400 perturbations x 4 replicates overflowed the 4 default plates and the error
    # pointed at an option the demo does not have (n_plates)
    code = main(
        [
            "demo",
            "--out",
            str(tmp_path / "d"),
            "--n-perturbations",
            "400",
            "--n-features",
            "20",
            "--n-active-features",
            "5",
            "--null-size",
            "200",
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "d" / "map_results.csv").is_file()
