"""Model bundles: a directory holding ``model.json`` (metadata) and ``weights.safetensors`` (arrays).

Opening a model that came from someone else must never run code, so loading:
- never unpickles (safetensors holds raw numbers; JSON holds plain values);
- refuses any file that looks like a pickle, any name with a path separator or ``..``, unknown
  format versions, JSON fields of the wrong type, tensors larger than ``MAX_TENSOR_BYTES`` or larger
  than the file, and arrays whose shape or dtype differs from what model.json declares;
- checks the weights' SHA-256 against model.json.
Every refusal is an ``engine.errors.ModelFileError`` with a message that says what is wrong.

Saving is atomic: the bundle is written to a temporary sibling directory (files fsynced), then
swapped in by renames; an interrupted save leaves the previous version loadable (``load`` falls
back to ``<dir>.previous`` if the swap was cut between its two renames).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from engine import safe_json
from engine.atomic import fsync_dir, remove_stale_temporaries, temp_prefix
from engine.errors import ModelFileError

FORMAT_NAME = "anomaly-desk-model"
FORMAT_VERSION = 1
MODEL_JSON = "model.json"
WEIGHTS = "weights.safetensors"
MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_TENSOR_BYTES = 4 * 1024 ** 3
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,199}$")
_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32,
           "I16": np.int16, "I8": np.int8, "U8": np.uint8, "BOOL": np.bool_}
_PICKLE_SUFFIXES = {".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".npy", ".npz", ".dill", ".ckpt"}


def _versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {"python": platform.python_version(), "numpy": np.__version__}
    for dist, key in (("anomaly-desk", "anomaly-desk"), ("torch", "torch"), ("scikit-learn", "sklearn")):
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    if out["anomaly-desk"] is None:
        out["anomaly-desk"] = _project_version()
    return out


def _project_version() -> str | None:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return None
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["version"])
    except (OSError, KeyError, ValueError):
        return None


def check_name(name: Any, what: str) -> str:
    """A plain, safe name: no path separators, no ``..``, no leading dot."""
    if not isinstance(name, str) or not _SAFE_NAME.match(name) or ".." in name:
        raise ModelFileError(f"unsafe {what} name {name!r} in the model: refused")
    return name


# ---------------------------------------------------------------------------------------------- save
def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())




def save_bundle(directory: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Path:
    """Write ``meta`` (JSON-able) and ``arrays`` as a bundle at ``directory``, atomically."""
    from safetensors.numpy import save_file

    target = Path(directory)
    if target.exists() and not target.is_dir():
        raise ModelFileError(f"{target}: exists and is not a directory")
    parent = target.parent if str(target.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    clean: dict[str, np.ndarray] = {}
    manifest: dict[str, dict[str, Any]] = {}
    for name, value in arrays.items():
        check_name(name, "array")
        arr = np.ascontiguousarray(np.asarray(value))
        if arr.dtype == object or arr.dtype.kind not in "fiub":
            raise ModelFileError(f"array {name!r} has unsupported dtype {arr.dtype}")
        clean[name] = arr
        manifest[name] = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
    remove_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target, ".tmp-"), dir=parent))
    try:
        weights = tmp / WEIGHTS
        save_file(clean, str(weights))
        _fsync_file(weights)
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()
        doc = dict(meta)
        doc.update(format=FORMAT_NAME, format_version=FORMAT_VERSION, versions=_versions(),
                   files={"weights": WEIGHTS}, weights_sha256=digest, arrays=manifest)
        text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False)
        with open(tmp / MODEL_JSON, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        _set_permissions(tmp)
        fsync_dir(tmp)
        _swap_in(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _set_permissions(directory: Path) -> None:
    """mkdtemp makes a private directory; give the bundle the usual permissions (umask applies)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(directory, 0o777 & ~umask)
    for entry in directory.iterdir():
        os.chmod(entry, 0o666 & ~umask)


def _previous(target: Path) -> Path:
    return target.with_name(target.name + ".previous")


def _swap_in(tmp: Path, target: Path) -> None:
    previous = _previous(target)
    if target.exists():
        if previous.exists():
            shutil.rmtree(previous, ignore_errors=True)
        os.replace(target, previous)
        fsync_dir(target.parent)
    os.replace(tmp, target)
    fsync_dir(target.parent)
    shutil.rmtree(previous, ignore_errors=True)


# ---------------------------------------------------------------------------------------------- load
def _looks_like_pickle(path: Path) -> bool:
    if path.suffix.lower() in _PICKLE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as fh:
            head = fh.read(2)
    except OSError:
        return False
    # pickle protocol 2+ starts with PROTO (0x80) + version; zip (torch.save, joblib) with PK
    return (len(head) == 2 and head[0] == 0x80 and head[1] <= 5) or head == b"PK"


def _read_header(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw = fh.read(8)
        if len(raw) != 8:
            raise ModelFileError(f"{path}: not a safetensors file (too short)")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER_BYTES or n > size - 8:
            raise ModelFileError(f"{path}: not a safetensors file (header length {n} is impossible)")
        header = safe_json.loads(fh.read(n), path, what="safetensors header JSON")
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: not a safetensors file (header is not an object)")
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        check_name(name, "tensor")
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list) or info.get("dtype") not in _DTYPES:
            raise ModelFileError(f"{path}: tensor {name!r} has a malformed description")
        shape = info["shape"]
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ModelFileError(f"{path}: tensor {name!r} has an invalid shape {shape!r}")
        nbytes = int(np.prod(shape, dtype=object)) * np.dtype(_DTYPES[info["dtype"]]).itemsize
        if nbytes > MAX_TENSOR_BYTES:
            raise ModelFileError(f"{path}: tensor {name!r} is oversized ({nbytes} bytes): refused")
        offsets = info.get("data_offsets")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
                or not 0 <= offsets[0] <= offsets[1] <= data_size or offsets[1] - offsets[0] != nbytes):
            raise ModelFileError(f"{path}: tensor {name!r} does not fit in the file (declared size or offsets)")
    return header


def _require(doc: dict[str, Any], key: str, types: type | tuple[type, ...], where: str = "model.json"):
    if key not in doc:
        raise ModelFileError(f"{where}: field '{key}' is missing")
    value = doc[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in (
            types if isinstance(types, tuple) else (types,))):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise ModelFileError(f"{where}: field '{key}' must be {names}, found {type(value).__name__}")
    return value


def _resolve(directory: Path) -> Path:
    if (directory / MODEL_JSON).is_file():
        return directory
    previous = _previous(directory)
    if (previous / MODEL_JSON).is_file():  # a save was interrupted between its two renames
        return previous
    if not directory.exists():
        raise ModelFileError(f"{directory}: no such model directory")
    if not directory.is_dir():
        raise ModelFileError(f"{directory}: a model is a directory (with {MODEL_JSON} and {WEIGHTS})")
    raise ModelFileError(f"{directory}: not a model directory ({MODEL_JSON} is missing)")


def load_bundle(directory: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and validate a bundle; returns (metadata, arrays). Raises ModelFileError."""
    from safetensors.numpy import load_file

    directory = _resolve(Path(directory))
    for entry in directory.iterdir():
        if entry.is_symlink():
            raise ModelFileError(f"{entry}: symbolic links are not allowed in a model: refused")
        if entry.name in (MODEL_JSON, WEIGHTS):
            if not entry.is_file():
                raise ModelFileError(f"{entry}: expected a file")
            continue
        if entry.is_file() and _looks_like_pickle(entry):
            raise ModelFileError(f"{entry}: a pickle/serialised-object file in the model: refused "
                                 "(models are loaded from safetensors and JSON only)")
    json_path = directory / MODEL_JSON
    if json_path.stat().st_size > MAX_JSON_BYTES:
        raise ModelFileError(f"{json_path}: too large for model metadata")
    raw = json_path.read_bytes()
    if raw[:1] == b"\x80" or raw[:2] == b"PK":
        raise ModelFileError(f"{json_path}: contains a pickle/serialised object, not JSON: refused")
    doc = safe_json.loads(raw, json_path, max_bytes=MAX_JSON_BYTES)
    if not isinstance(doc, dict):
        raise ModelFileError(f"{json_path}: must hold a JSON object")
    if doc.get("format") != FORMAT_NAME:
        raise ModelFileError(f"{json_path}: not an Anomaly Desk model (format {doc.get('format')!r})")
    version = _require(doc, "format_version", int)
    if version != FORMAT_VERSION:
        raise ModelFileError(f"{json_path}: unknown model format version {version} (this build reads "
                             f"version {FORMAT_VERSION}); it may come from a newer Anomaly Desk")
    files = _require(doc, "files", dict)
    weights_name = check_name(files.get("weights"), "weights file")
    manifest = _require(doc, "arrays", dict)
    digest = _require(doc, "weights_sha256", str)
    weights_path = directory / weights_name
    if weights_path.resolve().parent != directory.resolve() or not weights_path.is_file():
        raise ModelFileError(f"{weights_path}: weights file missing")
    if _looks_like_pickle(weights_path) and weights_path.suffix != ".safetensors":
        raise ModelFileError(f"{weights_path}: weights are not safetensors: refused")
    header = _read_header(weights_path)
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    if set(tensors) != set(manifest):
        raise ModelFileError(f"{weights_path}: tensors {sorted(set(tensors) ^ set(manifest))} do not match "
                             f"{MODEL_JSON}")
    for name, declared in manifest.items():
        check_name(name, "array")
        if (not isinstance(declared, dict) or not isinstance(declared.get("shape"), list)
                or not all(isinstance(d, int) and not isinstance(d, bool) for d in declared["shape"])):
            raise ModelFileError(f"{json_path}: array {name!r} is described with wrong types")
        if declared["shape"] != tensors[name]["shape"]:
            raise ModelFileError(f"{weights_path}: tensor {name!r} has shape {tensors[name]['shape']}, "
                                 f"{MODEL_JSON} says {declared['shape']}")
        try:
            same_dtype = np.dtype(str(declared.get("dtype"))) == np.dtype(_DTYPES[tensors[name]["dtype"]])
        except TypeError:
            same_dtype = False
        if not same_dtype:
            raise ModelFileError(f"{weights_path}: tensor {name!r} has dtype {tensors[name]['dtype']}, "
                                 f"{MODEL_JSON} says {declared.get('dtype')!r}")
    if hashlib.sha256(weights_path.read_bytes()).hexdigest() != digest:
        raise ModelFileError(f"{weights_path}: weights do not match their checksum (damaged or altered)")
    try:
        arrays = load_file(str(weights_path))
    except Exception as exc:  # noqa: BLE001 - any parse failure is a damaged file
        raise ModelFileError(f"{weights_path}: cannot be read ({exc})") from None
    return doc, arrays


def require_field(doc: dict[str, Any], key: str, types, where: str = "model.json"):
    """Public form of the type check, for the pipeline's own fields."""
    return _require(doc, key, types, where)
