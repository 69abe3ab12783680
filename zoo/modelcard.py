"""A zoo card as a Hugging Face model card (README.md with YAML metadata), and back.

The whole zoo card travels in the metadata under the key ``zoo``, so a repo
published with ``zoo push`` loads with ``zoo.load("hf-hub:org/repo")`` without
anything but its README and weights. The standard fields (library_name, tags,
license, datasets, metrics, model-index) are filled from it for the Hub's pages.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zoo import yamltext
from zoo.cards import Card, Metric
from zoo.errors import CardError, one_line

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

ZOO_KEY = "zoo"
PIPELINE_TAGS = {
    "image-classification": "image-classification",
    "video-classification": "video-classification",
    "object-detection": "object-detection",
    "feature-extraction": "image-feature-extraction",
}


def to_hf_model_card(card: Card) -> ModelCard:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    results = [
        EvalResult(
            task_type=card.task,
            dataset_type=metric.dataset,
            dataset_name=metric.dataset,
            dataset_split=metric.split,
            metric_type=metric.name,
            metric_value=metric.value,
            source_name=source[0] if (source := _source(card, metric)) else None,
            source_url=source[1] if source else None,
        )
        for metric in card.metrics
    ]
    data = ModelCardData(
        library_name="zoo",
        license=card.license,
        tags=["zoo", card.architecture, card.task],
        datasets=card.datasets or None,
        metrics=sorted({metric.name for metric in card.metrics}) or None,
        pipeline_tag=PIPELINE_TAGS.get(card.task),
        model_name=card.name,
        eval_results=results or None,
    )
    data[ZOO_KEY] = card.to_data()
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{_body(card)}")


def from_hf_model_card(model_card: ModelCard | str, origin: str) -> Card:
    """The zoo card in a model card's metadata (a ``ModelCard``, or a README's text).

    The text is read by zoo's own YAML reader, which refuses a key written twice where
    huggingface_hub keeps the last value; give the README's text to have that checked
    (a ``ModelCard`` holds its metadata already parsed).
    """
    text = model_card if isinstance(model_card, str) else model_card.content
    metadata = _metadata(text, origin)
    if ZOO_KEY not in metadata:
        raise CardError(f"{origin}: the model card's metadata holds no zoo card (key {ZOO_KEY!r})")
    return Card.from_data(metadata[ZOO_KEY], origin=origin)


def _metadata(content: str, origin: str) -> dict[str, Any]:
    import yaml
    from huggingface_hub.repocard import REGEX_YAML_BLOCK

    block = REGEX_YAML_BLOCK.search(content)
    try:
        metadata = yamltext.load(block.group(2)) if block else {}
    except yaml.YAMLError as error:
        raise CardError(
            f"{origin}: the metadata is not valid YAML: {one_line(str(error))}"
        ) from None
    return metadata if isinstance(metadata, dict) else {}


def _source(card: Card, metric: Metric) -> tuple[str, str] | None:
    """The Hub wants a source URL with every source name: (name, url), or neither."""
    if metric.source.startswith(("http://", "https://")):
        return metric.source, metric.source
    if metric.source == "paper" and card.paper:
        return card.paper.title, card.paper.url
    return None


def _body(card: Card) -> str:
    lines = [f"# {card.name}", "", card.summary, "", "## Use", "", "```python", "import zoo", ""]
    lines += [f'model = zoo.load("{card.name}")', "```", "", "## Inputs", ""]
    for spec in card.inputs:
        lines.append(f"- `{spec.name}`: {spec.layout}, example shape {spec.example_shape()}")
        if spec.description:
            lines.append(f"  {spec.description}")
    lines += ["", "## Outputs", ""]
    lines += [
        f"- `{out.name}`: per-sample shape {out.shape}. {out.description}" for out in card.outputs
    ]
    if card.metrics:
        lines += ["", "## Results", "", "| metric | value | dataset | split | source |"]
        lines.append("|---|---|---|---|---|")
        lines += [
            f"| {m.name} | {m.value} | {m.dataset} | {m.split} | {m.source} |" for m in card.metrics
        ]
    lines += ["", f"Parameters: {card.parameters:,}. License: {card.license}."]
    if card.paper:
        lines.append(f"Paper: [{card.paper.title}]({card.paper.url}).")
    return "\n".join(lines) + "\n"
