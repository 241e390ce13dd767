"""What a corpus URI means: expansion of globs and folders, and redaction.

A queue entry's ``uri`` may be a local path, a glob, a folder, ``file://``,
any smart_open scheme, or ``gensim-test:NAME`` for a file of gensim's bundled
test data. URIs that carry credentials are refused: credentials come from the
environment or the SDK's usual chain, never from the config, so that no
secret can end up in logs, manifests or the model's ``lifecycle_events``.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote_plus, urlsplit

from incremental_w2v.errors import ConfigError, InputMissingError

GENSIM_TEST_SCHEME = "gensim-test:"
REMOTE_SCHEMES = ("http", "https", "s3", "gs", "azure", "hdfs", "webhdfs", "ssh", "scp", "sftp")
# Query parameters that hold secrets in pre-signed or token-bearing URLs.
_SECRET_PARAMS = re.compile(
    r"^(x-amz-(signature|credential|security-token)|signature|sig|sv|se|sp|token|access_token|"
    r"auth|password|passwd|pwd|secret|key|api[_-]?key|apikey|awsaccesskeyid|x-goog-signature|"
    r"x-goog-credential)$",
    re.IGNORECASE,
)
_GLOB_CHARS = re.compile(r"[*?\[]")


def scheme_of(uri: str) -> str:
    """The URI's scheme ('' for a plain local path)."""
    if uri.startswith(GENSIM_TEST_SCHEME):
        return "gensim-test"
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://", uri)
    return m.group(1).lower() if m else ""


def is_remote(uri: str) -> bool:
    return scheme_of(uri) in REMOTE_SCHEMES


def credential_problem(uri: str) -> str | None:
    """Why ``uri`` may not be used as it is (it carries a secret), or None."""
    if scheme_of(uri) not in REMOTE_SCHEMES:
        return None
    parts = urlsplit(uri)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "it carries credentials in its user-info part (user:secret@host)"
    for name, _ in parse_qsl(parts.query, keep_blank_values=True):
        if _SECRET_PARAMS.match(name):
            return f"it carries a secret in its query parameter {name!r}"
    return None


def redact(uri: str) -> str:
    """An ASCII-safe rendering of ``uri`` with any user-info and query secrets removed."""
    text = uri
    if scheme_of(uri) in REMOTE_SCHEMES:
        parts = urlsplit(uri)
        netloc = parts.netloc.rsplit("@", 1)[-1]
        if "@" in parts.netloc:
            netloc = "***@" + netloc
        query = "&".join(
            f"{k}=***" if _SECRET_PARAMS.match(k) else (f"{k}={v}" if v else k)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
        )
        text = f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")
    return text.encode("ascii", "backslashreplace").decode("ascii")


def scrub(text: str, uri: str) -> str:
    """``text`` (say, a transport's error message) with every secret of ``uri`` masked.

    Libraries quote URLs in their own ways (requests shows the path and query
    alone), so replacing the whole URI is not enough: each secret value is
    masked wherever it appears, raw or percent-decoded.
    """
    text = text.replace(uri, redact(uri))
    if scheme_of(uri) not in REMOTE_SCHEMES:
        return text
    parts = urlsplit(uri)
    secrets = [parts.password or "", parts.username or ""] if "@" in parts.netloc else []
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if _SECRET_PARAMS.match(unquote_plus(name)):
            secrets += [value, unquote_plus(value)]
    for secret in sorted(filter(None, set(secrets)), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def check_uri(uri: str) -> None:
    """Raise ConfigError if ``uri`` may not be used."""
    problem = credential_problem(uri)
    if problem:
        raise ConfigError(
            f"corpus URI {redact(uri)} is refused: {problem}",
            hint="remove the credentials from the URI and provide them through the environment "
            "(e.g. AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or an AWS profile)",
        )


def resolve_local(uri: str, base_dir: Path) -> Path | None:
    """The local path ``uri`` names (relative paths against ``base_dir``), or None if remote."""
    scheme = scheme_of(uri)
    if scheme == "gensim-test":
        from gensim.test.utils import datapath

        return Path(datapath(uri[len(GENSIM_TEST_SCHEME):]))
    if scheme == "file":
        return Path(urlsplit(uri).path)
    if scheme:
        return None
    path = Path(os.path.expanduser(uri))
    return path if path.is_absolute() else base_dir / path


CONFIG_ORIGIN = "config"
COMMAND_LINE = "command line"


def _where_relative(uri: str, base_dir: Path, origin: str) -> str:
    """Which folder a relative path was resolved against, and why (for hints)."""
    if scheme_of(uri) or Path(os.path.expanduser(uri)).is_absolute():
        return "check the path"
    if origin == COMMAND_LINE:
        return (f"a relative path given on the command line resolves against the current "
                f"folder ({base_dir}); check it, or give an absolute path")
    return (f"a relative path in the config resolves against the config's folder ({base_dir}); "
            "check it, or give an absolute path")


def command_line_uri(uri: str) -> str:
    """``uri`` as given on the command line: a relative local path made absolute against the
    current folder (a URI in the config resolves against the config's folder instead)."""
    check_uri(uri)
    local = resolve_local(uri, Path.cwd())
    if local is None or scheme_of(uri):
        return uri
    if not (_GLOB_CHARS.search(str(local)) or local.exists()):
        raise InputMissingError(
            f"corpus {redact(uri)} does not exist (looked at {local})",
            hint=_where_relative(uri, Path.cwd(), COMMAND_LINE),
        )
    return str(local)


def corpus_key(uri: str, base_dir: Path) -> str:
    """What identifies a corpus across spellings: a local file's absolute path, else the
    redacted URI (exclusions are matched on it)."""
    local = resolve_local(uri, base_dir)
    if local is None:
        return redact(uri)
    return redact(os.path.normpath(os.path.abspath(local)))


def expand(uri: str, base_dir: Path, origin: str = CONFIG_ORIGIN) -> list[str]:
    """The concrete corpus URIs that ``uri`` stands for, in sorted order.

    A glob matches files; a folder stands for every regular file below it
    (recursively, hidden files skipped). A plain file or remote URI stands
    for itself. Raises InputMissingError for a plain local file that does not
    exist; a glob or folder that matches nothing returns an empty list (the
    caller decides whether that is an error).
    """
    check_uri(uri)
    local = resolve_local(uri, base_dir)
    if local is None:
        return [uri]
    keep_scheme = scheme_of(uri) == "gensim-test"
    text = str(local)
    if _GLOB_CHARS.search(text) and not local.exists():
        matches = sorted(p for p in glob.glob(text, recursive=True) if os.path.isfile(p))
        return [_relative_uri(Path(p), uri, base_dir) for p in matches]
    if local.is_dir():
        found = sorted(
            p for p in local.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(local).parts)
        )
        return [_relative_uri(p, uri, base_dir) for p in found]
    if not local.exists():
        raise InputMissingError(
            f"corpus {redact(uri)} does not exist (looked at {local})",
            hint=_where_relative(uri, base_dir, origin)
            + ("" if origin == COMMAND_LINE else "; or remove the entry"),
        )
    return [uri if keep_scheme else _relative_uri(local, uri, base_dir)]


def as_recorded(uri: str, base_dir: Path) -> str:
    """The form ``expand`` gives a plain file's URI (and the lineage records), existing or not."""
    local = resolve_local(uri, base_dir)
    if local is None or scheme_of(uri) == "gensim-test":
        return uri
    return _relative_uri(local, uri, base_dir)


def _relative_uri(path: Path, original: str, base_dir: Path) -> str:
    """Keep URIs as the user wrote them: relative to the config when they were relative."""
    if scheme_of(original) == "" and not Path(os.path.expanduser(original)).is_absolute():
        try:
            return str(path.relative_to(base_dir))
        except ValueError:
            return str(path)
    return str(path)
