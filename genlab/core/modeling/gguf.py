"""GGUF files (llama.cpp, LM Studio, Ollama) as genlab models: finding, checking, describing.

``--model`` may name a ``.gguf`` file, or a directory that holds one (``--gguf-file NAME`` picks
one of several). ``find_gguf`` turns that into a ``GgufFile`` (directory + file name: the form
``from_pretrained(directory, gguf_file=name)`` takes), and ``check_gguf`` reads the file's
header before transformers does, so a file genlab cannot use fails with one line that names
the unsupported architecture or quantization type instead of a traceback from deep inside the
loader. Loading itself (dequantized to dense weights, so training, merging and
``save_pretrained`` work) is ``genlab.core.modeling.loading``.

The header is read with the ``gguf`` package (llama.cpp's own reader, which transformers needs
to load these files anyway); the list of architectures transformers can load comes from
transformers itself, so it follows the installed version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from genlab.core.errors import GenlabError

GGUF_SUFFIX = ".gguf"
_FLOAT_TYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
_ARCH_ALIASES = {"qwen2moe", "qwen3moe", "gpt-oss", "minimax-m2", "t5encoder"}
"""llama.cpp spellings transformers maps to its own names itself."""


class GgufError(GenlabError, ValueError):
    """A GGUF file cannot be used; the message is one line naming the file and the fix."""


@dataclass(frozen=True)
class GgufFile:
    """Where a GGUF model lives: ``from_pretrained(directory, gguf_file=filename)``.

    Attributes:
        directory: Local directory (or hub repo id) holding the file.
        filename: The ``.gguf`` file's name inside it.
        local: True for a file on disk (False: a file in a hub repo).
    """

    directory: str
    filename: str
    local: bool = True

    @property
    def path(self) -> str:
        """The file's path (``repo/file.gguf`` for a hub file)."""
        return str(Path(self.directory) / self.filename) if self.local else (
            f"{self.directory}/{self.filename}")


@dataclass(frozen=True)
class GgufInfo:
    """What a GGUF file's header says.

    Attributes:
        architecture: ``general.architecture`` (``llama``, ``qwen2``...).
        context_length: ``<arch>.context_length`` (None when absent).
        tensor_types: The tensor types in the file (``F32``, ``Q8_0``...), sorted.
        has_chat_template: The file embeds ``tokenizer.chat_template``.
    """

    architecture: str
    context_length: int | None
    tensor_types: tuple[str, ...]
    has_chat_template: bool

    @property
    def weight_dtype(self) -> str:
        """The float dtype the weights are stored in: ``float16``/``bfloat16``/``float32``.

        A quantized file dequantizes exactly only to float32, so that is its dtype.
        """
        weights = [t for t in self.tensor_types if t != "F32"] or ["F32"]
        return _FLOAT_TYPES[weights[0]] if len(weights) == 1 and weights[0] in _FLOAT_TYPES \
            else "float32"


def is_gguf_name(name: str) -> bool:
    """True when ``name`` ends in ``.gguf``."""
    return name.lower().endswith(GGUF_SUFFIX)


def find_gguf(name: str, gguf_file: str | None = None) -> GgufFile | None:
    """The GGUF file ``name`` (and ``gguf_file``) point at, or None for a non-GGUF model.

    * ``name`` is a ``.gguf`` file: that file.
    * ``name`` is a directory and ``gguf_file`` is given: that file inside it.
    * ``name`` is a directory without ``config.json`` holding ``.gguf`` files: the only one.
    * ``name`` is not local and ``gguf_file`` is given: the file in that hub repo.

    Raises:
        GgufError: ``gguf_file`` is missing from the directory, or the directory holds several
            GGUF files and none was picked (the message lists them).
    """
    path = Path(name).expanduser()
    if path.is_file():
        if gguf_file is not None:
            raise GgufError(f"--gguf-file {gguf_file}: --model {name} is already a file; pass "
                            "the directory as --model, or drop --gguf-file")
        return GgufFile(str(path.parent), path.name) if is_gguf_name(path.name) else None
    if not path.is_dir():
        if gguf_file is None:
            return None
        return GgufFile(name, gguf_file, local=False)
    found = sorted(p.name for p in path.iterdir() if p.is_file() and is_gguf_name(p.name))
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            listed = ", ".join(found) or "none"
            raise GgufError(f"--gguf-file {gguf_file}: no such file in {name} (GGUF files "
                            f"there: {listed})")
        return GgufFile(str(path), gguf_file)
    if (path / "config.json").is_file() or not found:
        return None
    if len(found) > 1:
        raise GgufError(f"--model {name}: the directory holds {len(found)} GGUF files "
                        f"({', '.join(found)}); pick one with --gguf-file NAME")
    return GgufFile(str(path), found[0])


def check_gguf(path: str) -> GgufInfo:
    """Read a GGUF header and refuse what transformers cannot load, naming it.

    Raises:
        GgufError: Not a GGUF file, an architecture or tokenizer transformers does not
            support, or a tensor type the ``gguf`` package cannot dequantize.
    """
    gguf = _gguf_package()
    try:
        reader = gguf.GGUFReader(path)
    except (ValueError, OSError, IndexError) as err:  # bad magic, version, truncated file
        first = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise GgufError(f"--model {path}: not a readable GGUF file ({first})") from None
    meta = {key: _field_value(field) for key, field in reader.fields.items()}
    arch = str(meta.get("general.architecture", ""))
    supported = _supported_architectures()
    if supported and arch not in supported and arch not in _ARCH_ALIASES:
        raise GgufError(f"--model {path}: GGUF architecture {arch!r} is not supported by "
                        f"transformers (supported: {', '.join(sorted(supported))}); use the "
                        "model's Hugging Face checkpoint instead")
    _check_tokenizer(path, meta.get("tokenizer.ggml.model"))
    types = sorted({t.tensor_type.name for t in reader.tensors})
    bad = [t for t in types if not _can_dequantize(gguf, t)]
    if bad:
        raise GgufError(f"--model {path}: tensor type {', '.join(bad)} cannot be dequantized by "
                        f"the installed gguf package; use an F16, BF16, Q8_0, Q4_K or Q6_K file "
                        "of the model (or upgrade gguf)")
    context = meta.get(f"{arch}.context_length")
    return GgufInfo(arch, int(context) if isinstance(context, int) else None, tuple(types),
                    bool(meta.get("tokenizer.chat_template")))


def _gguf_package() -> Any:
    try:
        import gguf
    except ImportError:
        raise GgufError("loading GGUF files needs the gguf package: pip install gguf") from None
    return gguf


def _field_value(field: Any) -> Any:
    """A scalar or string field's value (arrays are left out: they can be huge)."""
    if len(field.types) != 1:
        return None
    try:
        return field.contents()
    except (ValueError, IndexError, TypeError):
        return None


def _supported_architectures() -> set[str]:
    """Architectures transformers loads from GGUF (empty when it cannot tell)."""
    names: set[str] = set()
    try:
        from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES
        names.update(GGUF_SUPPORTED_ARCHITECTURES)
    except ImportError:
        return set()
    try:
        from transformers.integrations.gguf import GGUF_ARCHS
        names.update(GGUF_ARCHS)
    except ImportError:
        pass
    return names - {"general", "tokenizer", "ignore"}  # metadata prefixes, not architectures


def _check_tokenizer(path: str, model: Any) -> None:
    try:
        from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_TOKENIZER_TYPES
    except ImportError:
        return
    if model is not None and model not in GGUF_TOKENIZER_TYPES:
        raise GgufError(f"--model {path}: GGUF tokenizer type {model!r} is not supported by "
                        f"transformers (supported: {', '.join(sorted(GGUF_TOKENIZER_TYPES))})")


def _can_dequantize(gguf: Any, type_name: str) -> bool:
    """Whether gguf-py can turn one block of this tensor type back into floats."""
    if type_name in _FLOAT_TYPES:
        return True
    import numpy as np

    qtype = gguf.GGMLQuantizationType[type_name]
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    try:
        gguf.quants.dequantize(np.zeros((1, type_size), dtype=np.uint8), qtype)
    except NotImplementedError:
        return False
    except Exception:  # noqa: BLE001 - a zero block need not be valid data; it did dispatch
        return True
    return block_size > 0
