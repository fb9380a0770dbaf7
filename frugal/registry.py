"""What a registered model version says about itself: the tags and one-line description that
tell it apart in the MLflow UI, and its entry in a champion pool. Plain values: the `Tracker`
(orchestration/tracking.py) writes them, the evaluate and continual stages compute them."""

from __future__ import annotations

CHAMPION_ALIAS = "champion"  # the pipeline's registered model: the rule's pick
CURRENT_ALIAS = "current"  # the continual stage's registered model: the version that ships

CHAMPION_POOL_TAG = "frugal.champion.pool"
CHAMPION_ELIGIBLE_TAG = "frugal.champion.eligible"
CHAMPION_UJ_TAG = "frugal.champion.uj"


def version_summary(
    variant: str,
    data_md5: str,
    selection_accuracy: float,
    test_accuracy: float,
    modeled_uj: float,
    profile: str,
    workload: str,
) -> tuple[dict[str, str], str]:
    """The tags and one-line description that tell a registered version apart in the MLflow UI:
    which variant, trained on which data (the raw data's md5, as DVC records it), its dev and
    test accuracy and its modeled energy per utterance on one device profile and workload."""
    tags = {
        "frugal.variant": variant,
        "dvc.md5.raw": data_md5,
        "selection_accuracy": f"{selection_accuracy:.4f}",
        "test_accuracy": f"{test_accuracy:.4f}",
        f"modeled_uj_per_utterance.{profile}.{workload}": f"{modeled_uj:.1f}",
    }
    description = (
        f"{variant}: {test_accuracy:.1%} test, {modeled_uj:,.0f} µJ/utterance modeled "
        f"({profile}, {workload}), selection {selection_accuracy:.1%}"
    )
    return tags, description


def champion_tags(pool: str, eligible: bool, modeled_uj: float) -> dict[str, str]:
    """A version's entry in the champion pool `pool` (`champion_pool_key`): whether it meets
    the accuracy budget against its own run's base model, and its modeled energy (the mean
    over workloads on the champion's profile), in full."""
    return {
        CHAMPION_POOL_TAG: pool,
        CHAMPION_ELIGIBLE_TAG: str(eligible).lower(),
        CHAMPION_UJ_TAG: repr(float(modeled_uj)),
    }


def champion_pool_key(raw_md5: str, profile: str, budget: float) -> str:
    """Versions compete for the alias only on the same data, profile and accuracy budget."""
    return f"{raw_md5}:{profile}:{budget:g}"
