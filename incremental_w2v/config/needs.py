"""Modules a run needs for what its config names, checked before any work.

Compressed formats, archive members, remote schemes and the report load their
libraries lazily, so a missing one would otherwise surface in the middle of a
run (after a base version was committed, say) as an internal error. Every
command that reads corpora or writes outputs asks :func:`require` first, and a
missing module is a configuration error (78) that names the module, what needs
it and how to install it. Presence is checked with ``importlib.util.find_spec``:
nothing is imported, so a no-op cron run pays nothing.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass

from incremental_w2v.errors import ConfigError
from incremental_w2v.uris import redact, scheme_of


@dataclass(frozen=True)
class Need:
    """One feature and the modules that provide it (any one of them will do)."""

    feature: str
    modules: tuple[str, ...]
    package: str  # what to install


ZSTD = Need(".zst decompression", ("compression.zstd", "backports.zstd"), "backports.zstd")
SEVENZIP = Need(".7z archives", ("py7zr",), "py7zr")
REPORT = Need("the HTML report", ("matplotlib",), "matplotlib")
S3 = Need("s3:// URIs", ("boto3",), "boto3")
_SUFFIXES = {".zst": ZSTD, ".7z": SEVENZIP}
_SCHEMES = {
    "s3": S3,
    "http": Need("http:// URIs", ("requests",), "requests"),
    "https": Need("https:// URIs", ("requests",), "requests"),
    "gs": Need("gs:// URIs", ("google.cloud.storage",), "smart_open[gcs]"),
    "azure": Need("azure:// URIs", ("azure.storage.blob",), "smart_open[azure]"),
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or half there
        return False


def needs_of(uri: str) -> list[Need]:
    """What reading ``uri`` needs: its transport, and its decompressor or archive reader."""
    found = []
    scheme = _SCHEMES.get(scheme_of(uri))
    if scheme is not None:
        found.append(scheme)
    name = uri.split("?", 1)[0].lower()
    found += [need for suffix, need in _SUFFIXES.items() if name.endswith(suffix)]
    return found


def require(uris: Iterable[str] = (), features: Iterable[Need] = ()) -> None:
    """Raise ConfigError naming every module missing for ``uris`` and ``features``."""
    wanted: dict[Need, list[str]] = {}
    for uri in uris:
        for need in needs_of(uri):
            wanted.setdefault(need, []).append(redact(uri))
    for need in features:
        wanted.setdefault(need, [])
    problems = []
    for need, users in wanted.items():
        if any(installed(m) for m in need.modules):
            continue
        shown = f" (for {', '.join(users[:3])}{', …' if len(users) > 3 else ''})" if users else ""
        problems.append(f"{need.feature} needs the module {need.modules[-1]}, which is not "
                        f"installed{shown}")
    if problems:
        packages = " ".join(sorted({n.package for n in wanted
                                    if not any(installed(m) for m in n.modules)}))
        raise ConfigError(
            "a module this run needs is not installed; nothing was done",
            problems,
            hint=f"reinstall incw2v with its dependencies (pip install -e . in the checkout, "
            f"or pip install incremental_w2v), or pip install {packages}",
        )


def missing_module(exc: ModuleNotFoundError) -> ConfigError:
    """The error for a module found missing only at run time (a need this file forgot)."""
    return ConfigError(
        f"the module {exc.name or exc} is not installed",
        hint="reinstall incw2v with its dependencies (pip install -e . in the checkout); "
        "committed versions are intact",
    )
