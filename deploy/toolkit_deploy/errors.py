"""The exceptions of toolkit and its runtime, in one place.

Each derives from a builtin so that callers who do not know ours can still catch them.
"""


class ToolkitError(Exception):
    """Base of every error raised on purpose by toolkit."""


class MissingDependencyError(ToolkitError, ImportError):
    """An optional library a feature needs is not installed; the message names the extra that
    installs it (the command line prints only that message)."""


class DecodeError(ToolkitError, ValueError):
    """A file could not be turned into the array the model expects."""


class ModelFormatError(ToolkitError, ValueError):
    """A model file is not a valid toolkit model (missing or malformed metadata, wrong I/O)."""


class ModelOutputError(ToolkitError, ValueError):
    """A model's output for some inputs is not a probability (NaN or infinite)."""


class OutputError(ToolkitError, OSError):
    """An output (predictions table, model file, wheel) could not be written: a full disk, a
    size limit, a folder that is not writable. The message says where, why, and what was kept."""


class OutputInUseError(OutputError):
    """Another run is writing the same output (it holds the output's lock file)."""


class DeviceError(ToolkitError, RuntimeError):
    """The requested execution device is not usable; raised instead of silently using another."""


class TargetError(ToolkitError, ValueError):
    """A model cannot be expressed at the opset or IR version its target runtime supports
    (`toolkit export --opset / --target-ort`)."""


class ParityError(ToolkitError, RuntimeError):
    """An exported model disagrees with PyTorch beyond the gates. Carries the report."""

    def __init__(self, message: str, report: object = None) -> None:
        super().__init__(message)
        self.report = report


class WorkerStartError(ToolkitError, RuntimeError):
    """Decoding worker processes cannot be started in this program (e.g. its main module is a
    script read from standard input, which spawned processes cannot import)."""


class DatasetError(ToolkitError, ValueError):
    """A labelled folder does not have the expected layout."""


#: Exceptions that stop a run even when raised while decoding one input: the user stopping it,
#: the interpreter leaving, and a library that is missing (every input would fail the same way).
_ENDS_RUN = (KeyboardInterrupt, SystemExit, GeneratorExit, ImportError)


def ends_run(error: BaseException) -> bool:
    """Whether `error`, raised while decoding one input, must stop the whole run rather than
    become that input's error.

    Anything a hostile or broken input can provoke in a decoder library is that input's error:
    `SyntaxError` and `struct.error` (Pillow's EXIF and header parsers), `MemoryError`,
    `ZeroDivisionError`, `RecursionError`, and a Rust `PanicException` from tokenizers, which
    derives from `BaseException`, not `Exception`. Only toolkit's own errors other than
    `DecodeError` (a damaged model, a failed output) and the exceptions above end a run.
    """
    if isinstance(error, _ENDS_RUN):
        return True
    return isinstance(error, ToolkitError) and not isinstance(error, DecodeError)


def error_message(error: BaseException) -> str:
    """How an input's error reads in a predictions table: its type, then its message."""
    text = str(error)
    if not text and isinstance(error, MemoryError):
        text = "decoding this input ran out of memory"
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
