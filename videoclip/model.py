"""VideoCLIP: a video tower and a text tower, both Hugging Face ``BertModel`` encoders.

Follows the authors' code (fairseq ``examples/MMPT``, ``MMFusionSeparate``) as design §1
describes it, so that the released checkpoint (design §2) scores the same:

* video: S3D features ``(B, T ≤ 32, 512)`` → :class:`VideoMLP` → ``[CLS] v1..vT [SEP]`` into
  the video tower (the first ``num_video_layers`` layers of the backbone);
* text: ``[CLS] tokens[:61] [SEP]`` into the text tower (all layers);
* pooling: masked mean of the last layer over the valid slots plus ``[SEP]`` (``[CLS]`` and
  padding excluded); no projection, no normalisation; score = dot product.

Paper: §3.1–3.2. Ablations of Paper Table 7: ``shared_towers`` (θv ≡ θt) and ``pooling="cls"``.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError
from torch import nn
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerBase

from videoclip._io import atomic_write_bytes, atomic_write_text
from videoclip.backbone import load_bert_config, load_bert_model, load_tokenizer
from videoclip.checkpoint import (
    CheckpointError,
    check_state_dict,
    convert_mmpt_state_dict,
    read_mmpt_checkpoint,
)

# The video MLP's LayerNorm is torch's default (1e-5), not BERT's 1e-12 (design §1).
VIDEO_MLP_LAYER_NORM_EPS = 1e-5
# Rows whose L2 norm is further than this from 1 trigger FeatureNormWarning (float16 storage
# alone moves norms by ~1e-3).
FEATURE_NORM_TOLERANCE = 1e-2
# Length buckets of fewer rows save little and cost a pass of every kernel (bench/RESULTS.md).
MIN_BUCKET_ROWS = 16
# The BertConfig fields that define a tower; config.json keeps only these.
_BERT_FIELDS = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "hidden_act",
    "intermediate_size",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "max_position_embeddings",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
    "position_embedding_type",
)
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_DIR = "tokenizer"


class FeatureNormWarning(UserWarning):
    """Video features whose rows are not unit-norm (design §3 expects L2-normalised S3D rows)."""


@dataclass
class ModelConfig:
    """Everything needed to rebuild a :class:`VideoCLIP` without its backbone (saved as JSON).

    Attributes:
        bert: the backbone's ``BertConfig`` fields (``_BERT_FIELDS``); its
            ``num_hidden_layers`` is the backbone's, the towers use the two counts below.
        backbone: the name the model was built from (provenance only).
        num_video_layers: video tower layers (6, design §1; equals ``num_text_layers`` when shared).
        num_text_layers: text tower layers (all of the backbone's, 12 for BERT-base).
        video_dim: input feature size (512, S3D).
        max_video_len: video slots (32; the ``[SEP]`` sits at position ``max_video_len + 1``).
        max_text_tokens: text tokens between ``[CLS]`` and ``[SEP]`` (61).
        shared_towers: one tower for both modalities (Paper Table 7, "shared").
        pooling: ``"mean"`` (design §1) or ``"cls"`` (Paper Table 7 ablation).
        attn_implementation: ``"eager"`` or ``"sdpa"`` (``transformers`` attention kernel).
        cls_token_id, sep_token_id, pad_token_id: the tokenizer's special ids.
    """

    bert: dict[str, Any]
    backbone: str = ""
    num_video_layers: int = 6
    num_text_layers: int = 12
    video_dim: int = 512
    max_video_len: int = 32
    max_text_tokens: int = 61
    shared_towers: bool = False
    pooling: str = "mean"
    attn_implementation: str = "sdpa"
    cls_token_id: int = 101
    sep_token_id: int = 102
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        missing = [name for name in _BERT_FIELDS if name not in self.bert]
        if missing:
            raise ValueError(f"ModelConfig.bert lacks the BertConfig fields {missing}")
        self.bert = {name: self.bert[name] for name in _BERT_FIELDS}
        if self.pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls'; got {self.pooling!r}")
        if self.attn_implementation not in ("eager", "sdpa"):
            raise ValueError(
                f"attn_implementation must be 'eager' or 'sdpa'; got {self.attn_implementation!r}"
            )
        for name in (
            "num_video_layers",
            "num_text_layers",
            "video_dim",
            "max_video_len",
            "max_text_tokens",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.shared_towers and self.num_video_layers != self.num_text_layers:
            raise ValueError(
                f"shared_towers=True uses one tower: num_video_layers ({self.num_video_layers}) "
                f"must equal num_text_layers ({self.num_text_layers})"
            )
        if self.max_video_len + 2 > self.bert["max_position_embeddings"]:
            raise ValueError(
                f"max_video_len={self.max_video_len} needs {self.max_video_len + 2} positions; "
                f"the backbone has {self.bert['max_position_embeddings']}"
            )

    def tower_config(self, num_layers: int) -> BertConfig:
        """The ``BertConfig`` of a tower with ``num_layers`` layers."""
        values = dict(self.bert, num_hidden_layers=num_layers)
        return BertConfig(**values, attn_implementation=self.attn_implementation)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, source: str = "config") -> ModelConfig:
        """Parse :meth:`to_json` output; unknown keys are an error (a typo must not pass)."""
        values = json.loads(text)
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{source}: unknown ModelConfig keys {unknown}; known: {sorted(known)}"
            )
        return cls(**values)


class VideoMLP(nn.Module):
    """Video token MLP (design §1): Linear → GELU (erf) → LayerNorm (eps 1e-5) → Linear.

    Shapes: ``(..., video_dim)`` → ``(..., hidden_size)``. Parameter names follow the original
    (``linear1``, ``LayerNorm``, ``linear2``). Initialised as BERT initialises new weights
    (normal with ``init_std``, zero bias), as the original's ``init_weights`` did.
    """

    def __init__(self, video_dim: int, hidden_size: int, *, init_std: float = 0.02) -> None:
        super().__init__()
        self.linear1 = nn.Linear(video_dim, hidden_size)
        self.activation = nn.GELU()  # exact erf form
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=VIDEO_MLP_LAYER_NORM_EPS)
        self.linear2 = nn.Linear(hidden_size, hidden_size)
        for linear in (self.linear1, self.linear2):
            nn.init.normal_(linear.weight, mean=0.0, std=init_std)
            nn.init.zeros_(linear.bias)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.LayerNorm(self.activation(self.linear1(video))))


class VideoCLIP(nn.Module):
    """The VideoCLIP dual encoder (design §1; Paper: §3).

    Build it with :meth:`from_backbone` (training), :meth:`from_mmpt_checkpoint` (the released
    weights) or :meth:`from_pretrained` (a directory written by :meth:`save_pretrained`). The
    builders return the model in eval mode, as ``transformers`` does; call ``.train()`` to
    train. ``self.check_feature_norms`` (default True) controls the unit-norm check of inputs.
    ``self.length_buckets`` (default 0, off) removes padding work from :meth:`encode_video` and
    :meth:`encode_text`: the rows are sorted by length and encoded in that many buckets, each
    cut to its longest row. The embeddings are the same (padding is masked out; only float
    rounding of the smaller matrix products differs); the cost falls with the padding (bench/RESULTS.md).

    Attributes:
        config: the :class:`ModelConfig`.
        tokenizer: the backbone's tokenizer.
        video_mlp: :class:`VideoMLP`.
        text_encoder: ``BertModel`` (no pooler).
        video_encoder: ``BertModel`` (no pooler); absent when ``shared_towers`` (use
            :attr:`video_tower`, which is then ``text_encoder``).
    """

    def __init__(self, config: ModelConfig, tokenizer: PreTrainedTokenizerBase) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.check_feature_norms = True
        self.length_buckets = 0
        hidden_size = config.bert["hidden_size"]
        self.video_mlp = VideoMLP(
            config.video_dim, hidden_size, init_std=config.bert["initializer_range"]
        )
        self.text_encoder = BertModel(
            config.tower_config(config.num_text_layers), add_pooling_layer=False
        )
        if not config.shared_towers:
            self.video_encoder = BertModel(
                config.tower_config(config.num_video_layers), add_pooling_layer=False
            )

    # ------------------------------------------------------------------ builders

    @classmethod
    def from_backbone(
        cls,
        name_or_path: str,
        *,
        num_video_layers: int = 6,
        video_dim: int = 512,
        shared_towers: bool = False,
        pooling: str = "mean",
        num_text_layers: int | None = None,
        attn_implementation: str = "sdpa",
    ) -> VideoCLIP:
        """Both towers initialised from one BERT-family checkpoint (design §1; Paper: §4.1).

        The video tower keeps the backbone's embeddings and its first ``num_video_layers``
        layers; the text tower its embeddings and its first ``num_text_layers`` layers (all by
        default); the video MLP is new.

        Args:
            name_or_path: ``"minilm-l6"`` (offline), a local directory or a hub name
                (see :func:`videoclip.backbone.resolve_backbone`).
            num_video_layers: video tower depth (6 at paper scale); ignored when shared.
            video_dim: input feature size (512 for S3D).
            shared_towers: one tower (the text tower) encodes both modalities (Table 7).
            pooling: ``"mean"`` or ``"cls"`` (Table 7).
            num_text_layers: truncate the text tower (a CPU toy profile); default all.
            attn_implementation: ``"eager"`` or ``"sdpa"``.
        """
        backbone = load_bert_model(name_or_path, attn_implementation=attn_implementation)
        tokenizer = load_tokenizer(name_or_path)
        available = backbone.config.num_hidden_layers
        num_text_layers = available if num_text_layers is None else num_text_layers
        if shared_towers:
            num_video_layers = num_text_layers
        for name, value in (
            ("num_text_layers", num_text_layers),
            ("num_video_layers", num_video_layers),
        ):
            if not 1 <= value <= available:
                raise ValueError(
                    f"{name}={value}, but backbone {name_or_path!r} has {available} layers"
                )
        config = ModelConfig(
            bert=backbone.config.to_dict(),
            backbone=name_or_path,
            num_video_layers=num_video_layers,
            num_text_layers=num_text_layers,
            video_dim=video_dim,
            shared_towers=shared_towers,
            pooling=pooling,
            attn_implementation=attn_implementation,
            **_special_ids(tokenizer),
        )
        model = cls(config, tokenizer)
        weights = backbone.state_dict()
        model.text_encoder.load_state_dict(_first_layers(weights, num_text_layers))
        if not shared_towers:
            model.video_encoder.load_state_dict(_first_layers(weights, num_video_layers))
        return model.eval()

    @classmethod
    def from_mmpt_checkpoint(
        cls,
        path: str | Path,
        *,
        backbone: str = "bert-base-uncased",
        trust_pickle: bool = False,
        attn_implementation: str = "sdpa",
    ) -> VideoCLIP:
        """Load the released fairseq checkpoint (``checkpoint_best.pt``; design §2).

        Strict: every weight must land in the model (the poolers and ``position_ids`` are the
        only keys dropped on purpose); fp16 weights are upcast to fp32. The number of video and
        text layers and the input size are read from the checkpoint.

        Args:
            path: the checkpoint file.
            backbone: source of the tokenizer and the BERT config (a hub name or a local
                directory holding ``bert-base-uncased``'s files).
            trust_pickle: see :func:`videoclip.checkpoint.read_mmpt_checkpoint`.
            attn_implementation: ``"eager"`` or ``"sdpa"``.

        Raises:
            videoclip.checkpoint.CheckpointError: another architecture, unknown/missing keys or
                shapes that do not fit the backbone's config (each listed by name).
        """
        weights = convert_mmpt_state_dict(
            read_mmpt_checkpoint(path, trust_pickle=trust_pickle), source=str(path)
        )
        bert_config = load_bert_config(backbone)
        if bert_config.hidden_size != weights.hidden_size:
            raise CheckpointError(
                f"{path}: the towers are {weights.hidden_size}-d but backbone {backbone!r} is "
                f"{bert_config.hidden_size}-d; pass the backbone the checkpoint was trained "
                f"from (bert-base-uncased for the release)"
            )
        if weights.num_text_layers != bert_config.num_hidden_layers:  # SPEC §1: all of them
            raise CheckpointError(
                f"{path}: {weights.num_text_layers} text layers but backbone {backbone!r} has "
                f"{bert_config.num_hidden_layers}; the text tower keeps every backbone layer, "
                f"so the file lacks layers: use an intact checkpoint"
            )
        tokenizer = load_tokenizer(backbone)
        config = ModelConfig(
            bert=bert_config.to_dict(),
            backbone=backbone,
            num_video_layers=weights.num_video_layers,
            num_text_layers=weights.num_text_layers,
            video_dim=weights.video_dim,
            attn_implementation=attn_implementation,
            **_special_ids(tokenizer),
        )
        model = cls(config, tokenizer)
        check_state_dict(model.state_dict(), weights.state_dict, source=str(path))
        model.load_state_dict(weights.state_dict)
        return model.eval()

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors``, ``config.json`` and ``tokenizer/`` into ``directory``.

        Each file is written atomically; ``config.json`` last, so a directory without it is an
        interrupted save. :meth:`from_pretrained` reads it back offline.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(directory / TOKENIZER_DIR)
        state = {key: value.detach().cpu().contiguous() for key, value in self.state_dict().items()}
        atomic_write_bytes(
            directory / WEIGHTS_FILE, safetensors.torch.save(state, {"format": "pt"})
        )
        atomic_write_text(directory / CONFIG_FILE, self.config.to_json())
        return directory

    @classmethod
    def from_pretrained(
        cls, directory: str | Path, *, attn_implementation: str | None = None
    ) -> VideoCLIP:
        """Load a directory written by :meth:`save_pretrained` (no network needed).

        Args:
            directory: the saved model.
            attn_implementation: override the saved kernel choice (``"eager"``/``"sdpa"``).
        """
        directory = Path(directory)
        for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_DIR):
            if not (directory / name).exists():
                raise FileNotFoundError(
                    f"{directory / name} is missing; expected a directory written by "
                    f"VideoCLIP.save_pretrained ({CONFIG_FILE}, {WEIGHTS_FILE}, {TOKENIZER_DIR}/)"
                )
        config_path = directory / CONFIG_FILE
        try:
            config = ModelConfig.from_json(config_path.read_text(encoding="utf-8"),
                                           source=str(config_path))
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            raise _incomplete(config_path, exc) from exc
        if attn_implementation is not None:
            config = replace(config, attn_implementation=attn_implementation)
        tokenizer = _load_saved_tokenizer(directory / TOKENIZER_DIR)
        model = cls(config, tokenizer)
        try:
            state = safetensors.torch.load_file(directory / WEIGHTS_FILE)
        except (SafetensorError, OSError) as exc:
            raise _incomplete(directory / WEIGHTS_FILE, exc) from exc
        check_state_dict(model.state_dict(), state, source=str(directory / WEIGHTS_FILE))
        model.load_state_dict(state)
        return model.eval()

    # ------------------------------------------------------------------ encoders

    @property
    def video_tower(self) -> BertModel:
        """The ``BertModel`` that encodes video (the text tower when ``shared_towers``)."""
        return self.text_encoder if self.config.shared_towers else self.video_encoder

    @property
    def device(self) -> torch.device:
        return self.video_mlp.linear1.weight.device

    def video_token_states(
        self, video: torch.Tensor, vmask: torch.Tensor, *, mask_cls: bool
    ) -> torch.Tensor:
        """Last-layer video states of the T slots (design §1, token-level use).

        Args:
            video: ``(B, T, video_dim)`` float features, ``T <= max_video_len``; one row per
                second, L2-normalised (design §3).
            vmask: ``(B, T)`` bool, True for valid seconds.
            mask_cls: mask the ``[CLS]`` key (attention mask ``[0, vmask, 1]``), the COIN and
                CrossTask zero-shot variant (design §7); False gives ``[1, vmask, 1]``.

        Returns:
            ``(B, T, D)``. A padded slot (``vmask`` False) holds what the tower computes there
            from ``MLP(0)``: its key is masked, its query is not. The original used these states
            as they are (DiDeMo's unmasked moment means); callers that need only the valid
            seconds slice them.
        """
        video, vmask = self._check_video(video, vmask)
        return self._video_hidden(video, vmask, mask_cls=mask_cls)[:, 1:-1]  # (B, T, D)

    def encode_video(self, video: torch.Tensor, vmask: torch.Tensor) -> torch.Tensor:
        """Pooled video embeddings (design §1; Paper: §3.1).

        Args:
            video: ``(B, T, video_dim)`` float features, ``T <= max_video_len`` (32).
            vmask: ``(B, T)`` bool, True for valid seconds.

        Returns:
            ``(B, D)``: the mean of the last layer over the valid slots and ``[SEP]``
            (``pooling="mean"``) or its ``[CLS]`` state (``pooling="cls"``).
        """
        video, vmask = self._check_video(video, vmask)
        # Looked up once (not per bucket): the table's gradient is one dense (V, D) tensor.
        special = self._special_embeddings()
        if self.length_buckets:
            pool = functools.partial(self._pool_video, special=special)
            return _bucketed(pool, vmask, self.length_buckets, video, vmask)
        return self._pool_video(video, vmask, special=special)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Pooled text embeddings (design §1; Paper: §3.1).

        Args:
            input_ids: ``(B, L)`` long, laid out ``[CLS] tokens [SEP] pad...``
                (see :meth:`tokenize`).
            attention_mask: ``(B, L)``, 1 for ``[CLS]``, tokens and ``[SEP]``, 0 for padding.

        Returns:
            ``(B, D)``: the mean of the last layer over the tokens and the final ``[SEP]``
            (``[CLS]`` and padding excluded), or the ``[CLS]`` state (``pooling="cls"``).
        """
        input_ids, attention_mask = self._check_text(input_ids, attention_mask)
        # Looked up once (not per bucket): the table's gradient is one dense (V, D) tensor.
        embeds = self.text_encoder.embeddings.word_embeddings(input_ids)  # (B, L, D)
        if self.length_buckets:
            return _bucketed(
                self._pool_text, attention_mask, self.length_buckets, embeds, attention_mask
            )
        return self._pool_text(embeds, attention_mask)

    def tokenize(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Lay texts out as ``[CLS] tokens[:61] [SEP]``, padded to the longest (design §1).

        Returns:
            ``input_ids`` ``(N, L)`` long and ``attention_mask`` ``(N, L)`` long, ``L <= 63``.
        """
        if isinstance(texts, str) or not all(isinstance(text, str) for text in texts):
            raise TypeError("tokenize expects a list of strings (wrap a single text in a list)")
        if len(texts) == 0:
            raise ValueError("tokenize got an empty list of texts")
        encoded = self.tokenizer(
            list(texts),
            add_special_tokens=True,
            truncation=True,
            max_length=self.config.max_text_tokens + 2,
            padding="longest",
            return_token_type_ids=False,
            return_tensors="pt",
        )
        return encoded["input_ids"], encoded["attention_mask"]

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str], *, batch_size: int = 256) -> torch.Tensor:
        """Tokenise and encode texts in batches, without gradients.

        Dropout follows the module's mode: call ``model.eval()`` first (the builders do).

        Returns:
            ``(N, D)`` float32 on the CPU.
        """
        if isinstance(texts, str):
            raise TypeError("encode_texts expects a list of strings (wrap a single text in a list)")
        chunks = []
        for start in range(0, len(texts), batch_size):
            input_ids, attention_mask = self.tokenize(texts[start : start + batch_size])
            chunks.append(self.encode_text(input_ids, attention_mask).float().cpu())
        if not chunks:
            raise ValueError("encode_texts got an empty list of texts")
        return torch.cat(chunks)

    def forward(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a training batch (``videoclip.data.samplers.Batch``: ``video``, ``vmask``,
        ``input_ids``, ``attention_mask``).

        Returns:
            ``(video_emb, text_emb)``, each ``(B, D)``.
        """
        video_emb = self.encode_video(batch.video, batch.vmask)
        text_emb = self.encode_text(batch.input_ids, batch.attention_mask)
        return video_emb, text_emb

    # ------------------------------------------------------------------ internals

    def _pool_video(
        self, video: torch.Tensor, vmask: torch.Tensor, *, special: torch.Tensor
    ) -> torch.Tensor:
        """Checked ``(B, T, video_dim)``, ``(B, T)`` → pooled ``(B, D)``."""
        hidden = self._video_hidden(video, vmask, mask_cls=False, special=special)  # (B, T + 2, D)
        if self.config.pooling == "cls":
            return hidden[:, 0]
        ones = torch.ones_like(vmask[:, :1])
        weights = torch.cat([torch.zeros_like(ones), vmask, ones], dim=1).to(hidden.dtype)
        return _masked_mean(hidden, weights)

    def _pool_text(self, embeds: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Word embeddings ``(B, L, D)`` of checked ids and their mask ``(B, L)`` → ``(B, D)``."""
        hidden = self.text_encoder(
            inputs_embeds=embeds,
            attention_mask=attention_mask,
            token_type_ids=torch.zeros_like(attention_mask),
        ).last_hidden_state  # (B, L, D)
        if self.config.pooling == "cls":
            return hidden[:, 0]
        weights = attention_mask.to(hidden.dtype)
        weights[:, 0] = 0.0  # [CLS] is not pooled
        return _masked_mean(hidden, weights)

    def _special_embeddings(self) -> torch.Tensor:
        """The video tower's ``[CLS]`` and ``[SEP]`` word embeddings, ``(2, D)``."""
        special = torch.tensor(
            [self.config.cls_token_id, self.config.sep_token_id], device=self.device
        )
        return self.video_tower.embeddings.word_embeddings(special)

    def _video_hidden(
        self,
        video: torch.Tensor,
        vmask: torch.Tensor,
        *,
        mask_cls: bool,
        special: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Last layer over ``[CLS] v1..vT [SEP]``: ``(B, T, video_dim)`` → ``(B, T + 2, D)``.

        ``special``: :meth:`_special_embeddings`, when the caller looked them up already.
        """
        batch_size, num_slots = vmask.shape
        tower = self.video_tower
        # Padded slots hold MLP(0) (as the original's zero padding); zeroing also keeps
        # whatever a caller left there (NaN included) out of the masked attention.
        tokens = self.video_mlp(video.masked_fill(~vmask.unsqueeze(-1), 0.0))  # (B, T, D)
        if special is None:
            special = self._special_embeddings()
        cls_emb, sep_emb = special.to(tokens.dtype)  # (D,) each
        inputs_embeds = torch.cat(
            [
                cls_emb.expand(batch_size, 1, -1),
                tokens,
                sep_emb.expand(batch_size, 1, -1),
            ],
            dim=1,
        )  # (B, T + 2, D)
        # [SEP] keeps position max_video_len + 1 whatever T is (as the original's
        # MMBertEmbeddings), so a clip padded to 32 slots and the same clip unpadded agree.
        positions = torch.cat(
            [
                torch.arange(num_slots + 1, device=video.device),
                torch.tensor([self.config.max_video_len + 1], device=video.device),
            ]
        ).expand(batch_size, -1)
        ones = torch.ones((batch_size, 1), dtype=torch.long, device=video.device)
        attention_mask = torch.cat(
            [torch.zeros_like(ones) if mask_cls else ones, vmask.long(), ones], dim=1
        )
        return tower(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=positions,
            token_type_ids=torch.zeros_like(attention_mask),
        ).last_hidden_state

    def _check_video(
        self, video: torch.Tensor, vmask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        video = torch.as_tensor(video)
        vmask = torch.as_tensor(vmask)
        expected = f"(B, T <= {self.config.max_video_len}, {self.config.video_dim})"
        if video.dim() != 3 or not video.is_floating_point():
            raise ValueError(
                f"video features must be a float tensor {expected}; "
                f"got shape {tuple(video.shape)}, dtype {video.dtype}"
            )
        if video.shape[2] != self.config.video_dim:
            raise ValueError(
                f"video features must have {self.config.video_dim} dims per second (S3D, design §3); "
                f"got {video.shape[2]} (shape {tuple(video.shape)})"
            )
        if video.shape[1] > self.config.max_video_len:
            raise ValueError(
                f"at most {self.config.max_video_len} seconds per clip ([CLS] v1..v"
                f"{self.config.max_video_len} [SEP], design §1); got T={video.shape[1]}: cut the "
                f"clip (evaluation uses its first {self.config.max_video_len} s) or use windows"
            )
        if tuple(vmask.shape) != tuple(video.shape[:2]):
            raise ValueError(
                f"vmask must have shape (B, T) = {tuple(video.shape[:2])} to match the features "
                f"{tuple(video.shape)}; got {tuple(vmask.shape)}"
            )
        if vmask.is_floating_point():
            raise ValueError(f"vmask must be bool (True = valid second); got dtype {vmask.dtype}")
        vmask = vmask.to(self.device).bool()
        video = video.to(self.device, self.video_mlp.linear1.weight.dtype)
        if self.check_feature_norms:
            _warn_if_not_unit_norm(video, vmask)
        return video, vmask

    def _check_text(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        input_ids = torch.as_tensor(input_ids)
        attention_mask = torch.as_tensor(attention_mask)
        if input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(
                f"input_ids must be an integer tensor (B, L); got shape {tuple(input_ids.shape)}, "
                f"dtype {input_ids.dtype}"
            )
        if attention_mask.shape != input_ids.shape:
            raise ValueError(
                f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}; "
                f"got {tuple(attention_mask.shape)}"
            )
        max_len = self.config.bert["max_position_embeddings"]
        if input_ids.shape[1] > max_len:
            raise ValueError(f"texts of at most {max_len} tokens; got L={input_ids.shape[1]}")
        if input_ids.numel() and not bool((input_ids[:, 0] == self.config.cls_token_id).all()):
            raise ValueError(
                f"input_ids must start with [CLS] (id {self.config.cls_token_id}) and be laid out "
                f"[CLS] tokens [SEP] (design §1); use model.tokenize(texts)"
            )
        if input_ids.numel() and int(attention_mask.sum(dim=1).min()) < 2:
            raise ValueError("every text row needs at least [CLS] and [SEP] unmasked")
        return input_ids.to(self.device).long(), attention_mask.to(self.device).long()


def _bucketed(
    encode: Callable[..., torch.Tensor], mask: torch.Tensor, num_buckets: int, *inputs: torch.Tensor
) -> torch.Tensor:
    """``encode(*inputs)`` without the padding work: rows sorted by length, ``num_buckets``
    buckets of (nearly) equal size, each cut to its longest row, results in the input order.

    Args:
        encode: maps ``(b, width, ...)`` tensors to ``(b, D)``.
        mask: ``(B, L)``, nonzero on valid slots; a row's length is its last valid slot + 1
            (at least 1, so a row with no valid slot still has a shape).
        num_buckets: ``>= 1``; 1 cuts the whole batch to its longest row. Buckets hold at
            least ``MIN_BUCKET_ROWS`` rows (fewer buckets for small batches).
        inputs: ``(B, L, ...)`` tensors, cut along dim 1.
    """
    if num_buckets < 1:
        raise ValueError(f"length_buckets={num_buckets}: use 0 (off) or a positive number")
    if mask.shape[0] == 0:
        return encode(*inputs)
    slots = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    lengths = (mask.bool() * slots).amax(dim=1).clamp(min=1).cpu()  # (B,) last valid + 1
    if num_buckets == 1 or len(lengths) < 2 * MIN_BUCKET_ROWS:
        width = int(lengths.max())
        return encode(*(x[:, :width] for x in inputs))
    order = torch.argsort(lengths, stable=True)
    num_buckets = max(1, min(num_buckets, len(order) // MIN_BUCKET_ROWS))
    sizes = [len(rows) for rows in order.tensor_split(num_buckets)]
    widths = [int(part.max()) for part in lengths[order].split(sizes)]
    # One gather, then contiguous chunks: split's backward concatenates, where slicing each
    # bucket out of the whole batch would build a full-size gradient per bucket.
    device_order = order.to(mask.device)
    chunks = zip(*(x[device_order].split(sizes) for x in inputs))
    parts = [encode(*(x[:, :width] for x in chunk)) for chunk, width in zip(chunks, widths)]
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(len(order))
    return torch.cat(parts)[inverse.to(mask.device)]


def _masked_mean(hidden: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """``(B, L, D)``, ``(B, L)`` 0/1 → ``(B, D)`` mean over the rows with weight 1."""
    return (hidden * weights.unsqueeze(-1)).sum(dim=1) / weights.sum(dim=1, keepdim=True)


def _warn_if_not_unit_norm(video: torch.Tensor, vmask: torch.Tensor) -> None:
    norms = video.float().norm(dim=-1)[vmask]  # valid rows only
    bad = (norms - 1.0).abs() > FEATURE_NORM_TOLERANCE
    num_bad = int(bad.sum())
    if num_bad:
        example = float(norms[bad][0])
        warnings.warn(
            f"{num_bad} of {norms.numel()} valid video feature rows are not unit-norm "
            f"(e.g. norm {example:.4g}). VideoCLIP expects S3D features L2-normalised per second "
            f"(design §3); fix: features / np.linalg.norm(features, axis=-1, keepdims=True) "
            f"before encoding (scores of unnormalised features are poor).",
            FeatureNormWarning,
            stacklevel=4,
        )


def _incomplete(path: Path, exc: BaseException) -> CheckpointError:
    """A saved-model file that cannot be read: most often a save that was interrupted."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]
    return CheckpointError(
        f"{path}: cannot read it ({type(exc).__name__}: {reason}); the file is truncated or "
        f"corrupt (an interrupted save?): save or convert the model again"
    )


def _load_saved_tokenizer(directory: Path) -> PreTrainedTokenizerBase:
    """The tokenizer a :meth:`VideoCLIP.save_pretrained` wrote, or an error naming what is missing."""
    vocab = [name for name in ("tokenizer.json", "vocab.txt") if (directory / name).is_file()]
    if not (directory / "tokenizer_config.json").is_file() or not vocab:
        raise CheckpointError(
            f"{directory}: incomplete tokenizer folder (needs tokenizer_config.json and "
            f"tokenizer.json or vocab.txt; an interrupted save?): save or convert the model again"
        )
    try:
        return AutoTokenizer.from_pretrained(directory)
    except (OSError, ValueError, ImportError, KeyError, TypeError) as exc:
        raise _incomplete(directory, exc) from exc


def _special_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    ids = {
        "cls_token_id": tokenizer.cls_token_id,
        "sep_token_id": tokenizer.sep_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    missing = [name for name, value in ids.items() if value is None]
    if missing:
        raise ValueError(
            f"the backbone's tokenizer defines no {missing}; VideoCLIP needs [CLS]/[SEP]/[PAD]"
        )
    return ids


def _first_layers(state: dict[str, torch.Tensor], num_layers: int) -> dict[str, torch.Tensor]:
    """A ``BertModel`` state dict restricted to the embeddings and layers ``0..num_layers-1``."""
    kept = {}
    for key, value in state.items():
        if key.startswith("encoder.layer."):
            if int(key.split(".")[2]) >= num_layers:
                continue
        elif not key.startswith("embeddings."):
            raise CheckpointError(f"unexpected backbone weight {key!r} (pooler already dropped?)")
        kept[key] = value
    return kept
