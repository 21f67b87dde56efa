"""The one redaction policy: which fields are personal, and how their values may be shown.

A field is **personal** when its contract classifies it (``FieldContract.pii``: ODCS
``classification`` in :data:`contracts.spec.PII_CLASSIFICATIONS` — pii, restricted,
confidential, sensitive) or when its name is one of :data:`FALLBACK_PII_FIELDS` (defence in
depth for rows stored without a contract). Every artifact — findings and their examples, the
``--json`` document, alerts, HTML reports (ours and Evidently's), forensic bundles, ``explain``
— shows a personal value in one of these forms, never raw:

- **in words**, ``<redacted pii>`` / ``<redacted restricted>`` (its classification): findings,
  ``explain``, alerts (:func:`redacted`, :func:`shown`);
- **as a keyed token**, ``h:`` + 16 hex digits of HMAC-SHA256 under the deployment key, where
  rows must stay comparable (a bundle's batch and keys; :func:`keyed_token`): the same id gives
  the same token in every bundle of one deployment and cannot be looked up without the key;
- **as its class**, ``nan``, ``+inf``, ``-inf``, ``default``, ``in_contract`` or
  ``out_of_contract``, for a number whose row matters (a bundle's batch; :func:`number_classes`);
- **rounded to two significant digits**, for a number whose distribution matters (the Evidently
  drift HTML; :func:`coarse_numbers`), so no bin edge or statistic is a row's value.

A missing value and the contract's default sentinel are published facts, not personal data:
they are kept, as are labels and masks. Examples of every finding, personal or not, are cut to
:data:`MAX_EXAMPLE_CHARS` characters (:func:`truncate_example`).

**The deployment key** is ``$FUNNELGUARD_REDACTION_KEY`` (at least 16 characters), else the key
file ``.funnelguard/redaction.key`` under the working directory, created once with 32 random
bytes and mode 0600 (:func:`deployment_key`). It is never written into an artifact.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from funnelguard.errors import EnvironmentFailure, InputError

if TYPE_CHECKING:
    import numpy as np

    from contracts.spec import Contract, FieldContract

__all__ = [
    "FALLBACK_PII_FIELDS",
    "MAX_EXAMPLE_CHARS",
    "KEY_ENV",
    "KEY_FILE",
    "NUMBER_CLASSES",
    "classification_of",
    "is_personal",
    "personal_fields",
    "redacted",
    "shown",
    "deployment_key",
    "keyed_token",
    "number_classes",
    "coarse_numbers",
    "truncate_example",
]

# Treated as personal data even when no contract says so (a contract marks its own
# identifiers with ``classification: pii``).
FALLBACK_PII_FIELDS = frozenset({
    "request_id", "email", "phone", "ip", "ip_address", "name", "full_name",
    "address", "ssn", "date_of_birth",
})
MAX_EXAMPLE_CHARS = 200
_MAX_EXAMPLE_ITEMS = 20  # items kept of a list or mapping inside one example
KEY_ENV = "FUNNELGUARD_REDACTION_KEY"
KEY_FILE = Path(".funnelguard") / "redaction.key"
_MIN_KEY_CHARS = 16
NUMBER_CLASSES = ("nan", "+inf", "-inf", "default", "in_contract", "out_of_contract")


# -- which fields -------------------------------------------------------------------------------

def classification_of(field: FieldContract) -> str | None:
    """The classification a personal field is shown by (``pii``, ``restricted`` ...), else None."""
    if field.pii:
        return (field.classification or "pii").lower()
    if field.name in FALLBACK_PII_FIELDS:
        return "pii"
    return None


def is_personal(contract: Contract | None, name: str | None) -> bool:
    """Whether column ``name`` holds personal data: the contract's classification, or the
    fallback names (the only rule when ``contract`` is None)."""
    if not name:
        return False
    if name in FALLBACK_PII_FIELDS:
        return True
    if contract is None:
        return False
    return any(f.name == name and f.pii for f in contract.fields)


def personal_fields(contracts: Contract | Iterable[Contract]) -> dict[str, str]:
    """Column -> classification of every personal field of ``contracts``."""
    if hasattr(contracts, "fields"):
        contracts = (contracts,)
    out: dict[str, str] = {}
    for contract in contracts:
        for f in contract.fields:
            label = classification_of(f)
            if label is not None:
                out.setdefault(f.name, label)
    return out


# -- in words -----------------------------------------------------------------------------------

def redacted(classification: str | None = "pii") -> str:
    """What a personal value shows as: ``<redacted pii>``, ``<redacted restricted>``."""
    return f"<redacted {classification or 'pii'}>"


def shown(value: Any, classification: str | None) -> Any:
    """``value`` as it may be shown: itself when not personal (``classification`` None),
    None for a missing value, else :func:`redacted`."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if classification is None:
        return value
    return redacted(classification)


# -- keyed tokens -------------------------------------------------------------------------------

def deployment_key(directory: str | Path | None = None) -> bytes:
    """The deployment's redaction key: ``$FUNNELGUARD_REDACTION_KEY``, else the key file.

    Args:
        directory: where ``.funnelguard/redaction.key`` lives (default: the working directory).

    Raises:
        InputError: the environment variable is set but shorter than 16 characters (exit 2).
        EnvironmentFailure: the key file cannot be created or read (exit 3).
    """
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if len(env) < _MIN_KEY_CHARS:
            raise InputError(f"${KEY_ENV}: expected a key of at least {_MIN_KEY_CHARS} "
                             f"characters, found {len(env)}")
        return env.encode()
    path = Path(directory or ".") / KEY_FILE
    try:
        if not path.exists():
            _create_key_file(path)
        key = path.read_text().strip()
    except OSError as exc:
        raise EnvironmentFailure(f"redaction key {path}: expected a readable key file (or "
                                 f"${KEY_ENV}), found {type(exc).__name__}: {exc.strerror or exc}"
                                 ) from exc
    if len(key) < _MIN_KEY_CHARS:
        raise EnvironmentFailure(f"redaction key {path}: expected at least {_MIN_KEY_CHARS} "
                                 f"characters, found {len(key)}; delete it to create a new one")
    return key.encode()


def _create_key_file(path: Path) -> None:
    """Write a new key where none is, atomically: concurrent first runs agree on one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)  # fails if another process created the key meanwhile
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)


def keyed_token(value: Any, key: bytes) -> str:
    """``h:`` + the first 16 hex digits of HMAC-SHA256(key, str(value))."""
    return "h:" + hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:16]


# -- numbers ------------------------------------------------------------------------------------

def number_classes(values: np.ndarray, low: float | None, high: float | None,
                   is_default: np.ndarray | None = None) -> np.ndarray:
    """Each number's class: ``nan``, ``+inf``, ``-inf``, ``default``, ``in_contract`` or
    ``out_of_contract`` (outside ``[low, high]``), an object array."""
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    out = np.full(len(x), "in_contract", dtype=object)
    with np.errstate(invalid="ignore"):
        outside = np.zeros(len(x), bool)
        if low is not None:
            outside |= x < low
        if high is not None:
            outside |= x > high
    out[outside] = "out_of_contract"
    if is_default is not None:
        out[np.asarray(is_default, bool)] = "default"
    out[np.isnan(x)] = "nan"
    out[np.isposinf(x)] = "+inf"
    out[np.isneginf(x)] = "-inf"
    return out


def coarse_numbers(values: np.ndarray, digits: int = 2) -> np.ndarray:
    """``values`` rounded to ``digits`` significant digits (NaN and ±inf kept), float64.

    ``61341.01`` -> ``61000.0``; ``0.0347`` -> ``0.035``; two digits are a bucket of a tenth of
    the magnitude, so neither a value nor a bin edge computed from values names a row.
    """
    import numpy as np

    x = np.asarray(values, dtype=np.float64)
    out = x.copy()
    finite = np.isfinite(x) & (x != 0)
    magnitude = np.floor(np.log10(np.abs(x[finite])))
    scale = 10.0 ** (digits - 1 - magnitude)
    out[finite] = np.round(x[finite] * scale) / scale
    return out


# -- examples -----------------------------------------------------------------------------------

def truncate_example(value: Any, limit: int = MAX_EXAMPLE_CHARS) -> Any:
    """An example as it may be stored: text cut to ``limit`` characters (``…`` marks the cut),
    lists and mappings to their first 20 items, each item cut the same way."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return value if len(value) <= limit else value[: limit - 1] + "…"
    if isinstance(value, Mapping):
        items = list(value.items())[:_MAX_EXAMPLE_ITEMS]
        return {truncate_example(str(k), limit): truncate_example(v, limit) for k, v in items}
    if isinstance(value, (list, tuple)):
        items = [truncate_example(v, limit) for v in value[:_MAX_EXAMPLE_ITEMS]]
        return tuple(items) if isinstance(value, tuple) else items
    if isinstance(value, (bytes, bytearray)):
        return truncate_example(bytes(value[: limit * 4]).decode("utf-8", "replace"), limit)
    if hasattr(value, "tolist") and getattr(value, "ndim", 0):  # an array: as a list
        return truncate_example(value.tolist(), limit)
    if hasattr(value, "item"):  # numpy scalars: small, kept as they are
        return value
    text = str(value)
    return value if len(text) <= limit else text[: limit - 1] + "…"
