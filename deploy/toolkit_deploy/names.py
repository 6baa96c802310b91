"""Names shared by the exporter and the runtime: graph inputs/outputs and metadata keys.

Both sides read these constants, so a model written by `toolkit export` is always readable by the
runtime that ships with the same format version.
"""

#: Version of the model-file contract written into every exported model. Bump on breaking change.
FORMAT_VERSION = 1

INPUT = "input"
LOGITS = "logits"
PROBABILITIES = "probabilities"
OUTPUTS = (LOGITS, PROBABILITIES)
BATCH_AXIS = "batch"

_PREFIX = "toolkit."
META_FORMAT_VERSION = _PREFIX + "format_version"
META_MODALITY = _PREFIX + "modality"
META_LABELS = _PREFIX + "labels"
META_PREPROCESS = _PREFIX + "preprocess"
META_INPUT = _PREFIX + "input"
META_PROVENANCE = _PREFIX + "provenance"
META_PARITY = _PREFIX + "parity"
META_OPSET = _PREFIX + "opset"

REQUIRED_META = (
    META_FORMAT_VERSION,
    META_MODALITY,
    META_LABELS,
    META_PREPROCESS,
    META_INPUT,
    META_PROVENANCE,
    META_PARITY,
    META_OPSET,
)
