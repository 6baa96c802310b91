"""Names shared by the exporter and the runtime: graph inputs/outputs and metadata keys, and the
scoring batch size (the exporter times INT8 at it).

Both sides read these constants, so a model written by `toolkit export` is always readable by the
runtime that ships with the same format version.
"""

#: Inputs per ONNX Runtime call of `score`, `evaluate` and `Predictor.predict`, and the batch
#: size the INT8 speed gate is measured at. Best, or within noise of the best, for every modality
#: on 2 cores (benchmarks/defaults.py, benchmarks/README.md).
BATCH_SIZE = 32

#: Version of the model-file contract written into every exported model. Bump on breaking change.
#: 2: every `toolkit.*` value is JSON (format 1 wrote the modality as a bare string), a text
#: model's tokenizer is a JSON object inside the preprocess spec (format 1: a JSON string of
#: it), and image and video specs name their resize algorithm. 3: as 2, with `toolkit.task`, written
#: for multi-label models only, so that a runtime that knows only single-label files (reading up
#: to 2) refuses them instead of taking their sigmoid outputs as one label's softmax. The runtime
#: reads formats 1 to 3; docs/model-metadata.v3.schema.json is the JSON Schema of formats 2 and 3.
FORMAT_VERSION = 3
#: The format of a single-label model file (nothing of format 3 in it).
SINGLE_LABEL_FORMAT_VERSION = 2
#: The oldest format this runtime still reads.
OLDEST_FORMAT_VERSION = 1

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
#: Optional (multi-label models only, so single-label files are unchanged): a JSON object
#: {"type": "multilabel", "thresholds": [one per label], "separator": "|"}. Without it a model
#: is single-label (softmax, argmax).
META_TASK = _PREFIX + "task"
MULTICLASS = "multiclass"
MULTILABEL = "multilabel"
TASKS = (MULTICLASS, MULTILABEL)
#: Joins the labels of a label set in tables (CSV data, `toolkit score` output).
LABEL_SEPARATOR = "|"

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
