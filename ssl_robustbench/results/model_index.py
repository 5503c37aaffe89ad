"""A run's results as the Hugging Face model card's ``model-index`` metadata (the YAML front matter a model's
README carries: https://huggingface.co/docs/hub/model-cards#evaluation-results), so robustness numbers can be pasted
into a model card. Built with ``huggingface_hub``'s own ``EvalResult`` and ``eval_results_to_model_index``.

Each suite card gives one entry per aggregate: task ``image-classification``; dataset ``type`` the evaluation data
(``imagenet-1k``, ``embedded`` …), ``name`` the benchmark (ImageNet-C, ImageNet-PD …), ``config`` the suite and
``split`` its split; metric ``type`` ``accuracy`` (top-1 aggregates), ``mce`` / ``relative_mce`` / ``ce`` (corruption
errors) or ``accuracy_drop``, its ``value`` in percent, and its ``name`` the protocol: the head (linear probe,
released head, k-NN), the number of images and the protocol digest that keys the leaderboard board. ``verified``
is false: the Hub's flag means "verified by the Hub", which these numbers are not (a leaderboard's own verification
is recorded in its store, not here).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ssl_robustbench.results.card import ResultCard

SOURCE = "ssl-robustbench"
HEADS = {"probe": "linear probe", "released": "released linear head", "knn": "k-NN", "slf": "standard linear finetune",
         "alf": "adversarial linear finetune", "aff": "adversarial full finetune"}
_ERRORS = {"mce": "mce", "relative_mce": "relative_mce", "drop": "accuracy_drop"}


def metric_type(aggregate: str) -> str:
    """The Hub metric type of one of a card's aggregates."""
    if aggregate.startswith("ce:"):
        return "ce"
    return _ERRORS.get(aggregate, _ERRORS.get(aggregate.rsplit("_", 1)[-1], "accuracy"))


def eval_results(cards: Iterable[ResultCard], *, source_url: str | None = None) -> list[Any]:
    """``huggingface_hub.EvalResult`` entries for every aggregate of every card (rank metric first per card);
    ``source_url`` (e.g. the leaderboard that holds them) becomes each entry's source."""
    from huggingface_hub import EvalResult

    from ssl_robustbench.results.leaderboard import SUITE_TITLES

    results = []
    for card in cards:
        protocol = card.protocol
        head = HEADS.get(protocol.head.kind, protocol.head.kind)
        rank = card.rank_metric
        for name in sorted(card.aggregates, key=lambda n: (n != rank, n)):
            value = card.aggregates[name]
            results.append(EvalResult(
                task_type="image-classification", task_name="Image Classification (frozen SSL features)",
                dataset_type=protocol.dataset,
                dataset_name=protocol.dataset if card.suite == "clean" else SUITE_TITLES.get(card.suite, card.suite),
                dataset_config=card.suite, dataset_split=protocol.eval_split,
                metric_type=metric_type(name), metric_value=round(100 * value, 2),
                metric_name=f"{name} (%, {head}, {protocol.subset_size:,} images, protocol "
                            f"{protocol.config_hash[:12]})",
                verified=False, source_name=SOURCE if source_url else None, source_url=source_url))
    return results


def model_index(cards: list[ResultCard], *, model_name: str | None = None, source_url: str | None = None
                ) -> dict[str, Any]:
    """``{"model-index": [...]}`` for the cards (all of one model)."""
    from huggingface_hub.repocard_data import eval_results_to_model_index

    models = {card.model.id for card in cards}
    if len(models) != 1:
        from ssl_robustbench.errors import UserError

        raise UserError(f"a model-index describes one model; these cards hold {', '.join(sorted(models)) or 'none'}")
    results = eval_results(cards, source_url=source_url)
    return {"model-index": eval_results_to_model_index(model_name or models.pop(), results)}
