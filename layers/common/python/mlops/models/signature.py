"""The input signature of a model: which features it takes, of which type, in which order.

The signature travels with every version (registry record, ONNX metadata, model card) so that
inference builds the input tensor in exactly the order the model was trained on. It is plain
data with no dependency beyond the standard library, so every function can import it cheaply.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: The name of the single float input tensor of every exported model.
INPUT_NAME = "features"
#: The name of the [n, 2] float probability output (no ZipMap).
PROBABILITY_OUTPUT = "probabilities"
#: The ONNX metadata key that stores the signature as JSON inside the artifact.
METADATA_KEY = "mlops.signature"


@dataclass(frozen=True)
class InputSignature:
    """Feature names in tensor order, their element type and the model's tensors.

    `features[i]` is column `i` of the input tensor `input_name` of shape [None, len(features)].
    Every feature is a float; NaN means missing. `classes[positive_index]` is the positive class.
    """

    features: tuple[str, ...]
    dtype: str = "float32"
    input_name: str = INPUT_NAME
    output_name: str = PROBABILITY_OUTPUT
    classes: tuple[int, ...] = (0, 1)
    positive_index: int = 1

    def __post_init__(self) -> None:
        if not self.features:
            raise ValueError("a signature needs at least one feature")
        if len(set(self.features)) != len(self.features):
            duplicates = sorted({f for f in self.features if self.features.count(f) > 1})
            raise ValueError(f"duplicate feature names in signature: {duplicates}")
        if not all(isinstance(f, str) and f for f in self.features):
            raise ValueError("feature names must be non-empty strings")
        if self.dtype != "float32":
            raise ValueError(f"unsupported input dtype {self.dtype!r}; models take float32")
        if not 0 <= self.positive_index < len(self.classes):
            raise ValueError("positive_index out of range of classes")

    @property
    def n_features(self) -> int:
        """How many columns the input tensor has."""
        return len(self.features)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able form: each feature with its name, type and position."""
        return {
            "input": self.input_name,
            "dtype": self.dtype,
            "shape": [None, self.n_features],
            "features": [
                {"name": name, "type": "float", "position": i, "nullable": True}
                for i, name in enumerate(self.features)
            ],
            "output": self.output_name,
            "classes": list(self.classes),
            "positive_index": self.positive_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "InputSignature":
        """Rebuild a signature from `to_dict` output; features are ordered by their position."""
        feats = sorted(data["features"], key=lambda f: f["position"])
        if [f["position"] for f in feats] != list(range(len(feats))):
            raise ValueError("feature positions must be 0..n-1 without gaps")
        return cls(
            features=tuple(f["name"] for f in feats),
            dtype=data.get("dtype", "float32"),
            input_name=data.get("input", INPUT_NAME),
            output_name=data.get("output", PROBABILITY_OUTPUT),
            classes=tuple(int(c) for c in data.get("classes", (0, 1))),
            positive_index=int(data.get("positive_index", 1)),
        )

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces) as stored in the ONNX metadata."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "InputSignature":
        """Parse `to_json` output."""
        return cls.from_dict(json.loads(text))

    @classmethod
    def of(cls, features: Sequence[str]) -> "InputSignature":
        """The default signature for these feature names, in this order."""
        return cls(features=tuple(features))
