"""What a corpus URI means: expansion, one key per file, redaction, and printable names.

A queue entry's ``uri`` may be a local path, a glob, a folder, ``file://``,
any smart_open scheme, or ``gensim-test:NAME`` for a file of gensim's bundled
test data. URIs that carry credentials are refused: credentials come from the
environment or the SDK's usual chain, never from the config, so that no
secret can end up in logs, manifests or the model's ``lifecycle_events``.
Whatever is shown is redacted (:func:`redact`, :func:`scrub`) and escaped
(:func:`printable`); a local file has one key however it is spelt
(:func:`corpus_key`).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, unquote_plus, urlsplit

from incremental_w2v.errors import ConfigError, InputMissingError

GENSIM_TEST_SCHEME = "gensim-test:"
REMOTE_SCHEMES = ("http", "https", "s3", "gs", "azure", "hdfs", "webhdfs", "ssh", "scp", "sftp")
# Query parameters whose values are shown: known to name a thing, never to prove who asks.
# Every other value is masked in output (an allowlist: a new kind of token is masked too).
HARMLESS_PARAMS = frozenset({
    "alt", "branch", "compression", "date", "dl", "download", "encoding", "end", "file",
    "filename", "format", "generation", "lang", "limit", "offset", "page", "part",
    "partnumber", "path", "prefix", "raw", "ref", "response-content-disposition",
    "response-content-type", "rev", "revision", "snapshot", "start", "tag", "type",
    "version", "versionid",
})
# Query parameters that hold a secret: a URI with one is refused outright.
_SECRET_PARAMS = re.compile(
    r"^(x-amz-(signature|credential|security-token)|signature|sig|sv|se|sp|skoid|sktid|"
    r"awsaccesskeyid|x-goog-signature|x-goog-credential|key|code)$|"
    r"secret|token|passw|pwd|credential|api[_-]?key|access[_-]?key|private|session|"
    r"(^|[_-])auth($|[_-])|authori[sz]ation",
    re.IGNORECASE,
)
_GLOB_CHARS = re.compile(r"[*?\[]")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# A scheme however many slashes follow it (``https:/h``, ``https:h``, ``https:\\h``), and the
# first segment after them: where a user-info part would be. Two letters at least: one
# would be a Windows drive.
_LOOSE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]+):([/\\]*)([^/\\?#]*)")
# Schemes that name a network location: with other than two slashes they are malformed
# (``https:/host/x``), and libraries read them in different ways.
_URL_SCHEMES = frozenset({*REMOTE_SCHEMES, "s3a", "s3n", "s3u", "gcs", "ftp", "ftps", "webdav",
                          "webdavs", "smb", "abfs", "abfss", "wasb", "wasbs", "az", "adl"})
# A URL inside free text (a library's log line or error message).
_URL_IN_TEXT = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>`]+")
# C0 and C1 controls, DEL, and the Unicode line/paragraph separators and bidi controls
# that can make one printed name look like several lines or reorder what follows.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` safe to print on one line: controls escaped (``\\n``, ``\\x1b``), and
    what no terminal or UTF-8 file can hold (lone surrogates) as ``\\udc80``.

    The one function through which names from configs, folders and archives,
    URIs and words pass before they are printed or logged, so that none can
    forge a line ('incw2v: error: ...') or move the cursor.
    """
    out = _UNPRINTABLE.sub(_escape_char, text)
    try:
        out.encode("utf-8")
    except UnicodeEncodeError:
        out = out.encode("utf-8", "backslashreplace").decode("utf-8")
    return out


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(
        char, char.encode("unicode_escape").decode("ascii"))


def scheme_of(uri: str) -> str:
    """The URI's scheme ('' for a plain local path)."""
    if uri.startswith(GENSIM_TEST_SCHEME):
        return "gensim-test"
    m = _SCHEME.match(uri)
    return m.group(1).lower() if m else ""


def is_remote(uri: str) -> bool:
    return scheme_of(uri) in REMOTE_SCHEMES


def _has_authority(uri: str) -> bool:
    return scheme_of(uri) not in ("", "gensim-test")


def _query_pairs(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def _loose(uri: str) -> re.Match[str] | None:
    """The scheme, slashes and first segment of a URI-like ``uri`` (any number of slashes),
    or None for a local path (or ``gensim-test:``)."""
    if uri.startswith(GENSIM_TEST_SCHEME):
        return None
    m = _LOOSE.match(uri)
    if m is None or not (m.group(2) or "@" in m.group(3)):
        return None  # 'notes:v2.txt' is a file name; 'x:/...' and 'x:u@h' are URIs
    return m


def _userinfo_span(uri: str) -> tuple[int, int] | None:
    """Where the user-info part is (``user:secret`` of ``scheme:[//]user:secret@host``)."""
    m = _loose(uri)
    if m is None or "@" not in m.group(3):
        return None
    return m.start(3), m.start(3) + m.group(3).rindex("@")


def _is_bare_secret(component: str) -> bool:
    """A query component without '=' (``?ghp_abc``): a value with no name, so a secret
    unless it is one of the harmless flags (``?download``)."""
    return "=" not in component and unquote_plus(component).lower() not in HARMLESS_PARAMS


def malformed_problem(uri: str) -> str | None:
    """Why ``uri`` is a network URL written wrongly (``https:/host/x``, ``s3:bucket/x``),
    or None. (A local name that starts so is written ``./s3:bucket``.)"""
    m = _LOOSE.match(uri)
    if m is not None and m.group(1).lower() in _URL_SCHEMES and m.group(2) != "//":
        return (f"it is not a well-formed {m.group(1).lower()} URL: write "
                f"{m.group(1).lower()}://host/path (two slashes)")
    return None


def credential_problem(uri: str) -> str | None:
    """Why ``uri`` may not be used as it is (it carries a secret), or None. Any scheme,
    however many slashes follow it."""
    if _userinfo_span(uri) is not None:
        return "it carries credentials in its user-info part (user:secret@host)"
    if not _has_authority(uri):
        return None
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        return "it carries credentials in its user-info part (user:secret@host)"
    for name, _ in _query_pairs(parts.query):
        if _SECRET_PARAMS.search(name):
            return f"it carries a secret in its query parameter {printable(name)!r}"
    return None


def redact(uri: str) -> str:
    """An ASCII-safe, printable rendering of ``uri`` that shows no secret.

    For every scheme, however many slashes follow it: the user-info part is
    masked, the value of every query parameter not known to be harmless is
    masked, a component with no ``=`` (a bare token) whole unless it is a
    harmless name, and so is a fragment.
    Masking twice gives the same text, so a redacted URI (as the lineage
    records it) redacts to itself.
    """
    text = uri
    span = _userinfo_span(uri)
    if span is not None:
        text = f"{uri[:span[0]]}***{uri[span[1]:]}"
    if _has_authority(uri):
        parts = urlsplit(text)
        netloc = parts.netloc
        if "@" in netloc:
            netloc = "***@" + netloc.rsplit("@", 1)[-1]
        text = f"{parts.scheme}://{netloc}{parts.path}" + _masked_query(parts.query)
        if parts.fragment:
            text += "#***"
    elif _loose(uri) is not None:  # 'https:/h/x?q#f': masked the same way, kept as written
        head, hashed, _ = text.partition("#")
        head, _, query = head.partition("?")
        text = head + _masked_query(query) + ("#***" if hashed else "")
    return printable(text).encode("ascii", "backslashreplace").decode("ascii")


def _masked_query(query: str) -> str:
    """``?query`` with every value not known to be harmless masked ('' for none)."""
    shown = []
    for component in query.split("&") if query else []:
        if not component:
            continue
        if _is_bare_secret(component):
            shown.append("***")
            continue
        pairs = _query_pairs(component)
        if not pairs:  # '=x': a value without a name
            shown.append("=***")
            continue
        k, v = pairs[0]
        if "=" not in component or not v:
            shown.append(k)
        elif k.lower() in HARMLESS_PARAMS or v == "***":
            shown.append(f"{k}={v}")
        else:
            shown.append(f"{k}=***")
    return f"?{'&'.join(shown)}" if shown else ""


def secrets_of(uri: str) -> list[str]:
    """Every secret-looking part of ``uri`` (user-info, masked query values, fragment),
    raw and percent-decoded: the strings that must never be printed."""
    found: list[str] = []
    span = _userinfo_span(uri)
    if span is not None:
        userinfo = uri[span[0]:span[1]]
        found += [userinfo, *userinfo.split(":", 1)]
    if not _has_authority(uri):
        if _loose(uri) is None:
            return []
        parts = urlsplit(uri.split(":", 1)[0] + "://" + uri.split(":", 1)[1].lstrip("/\\"))
    else:
        parts = urlsplit(uri)
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found += [userinfo, *userinfo.split(":", 1)]
    for pair in parts.query.split("&"):
        name, _, value = pair.partition("=")
        if _is_bare_secret(pair):
            found.append(pair)
        elif unquote_plus(name).lower() not in HARMLESS_PARAMS:
            found.append(value)
    if parts.fragment:
        found.append(parts.fragment)
    return sorted({v for raw in found for v in (raw, unquote_plus(raw), unquote(raw)) if v},
                  key=len, reverse=True)


def scrub(text: str, uri: str = "", extra: Iterable[str] = ()) -> str:
    """``text`` (a transport's error message, a log line) with no secret left in it.

    Every URL in it is redacted; then each secret of ``uri`` and each string in
    ``extra`` is masked wherever it still appears, raw or percent-decoded
    (libraries quote URLs in their own ways: requests shows the path and query
    alone).
    """
    text = _URL_IN_TEXT.sub(lambda m: redact(m.group(0)), text.replace(uri, redact(uri))
                            if uri else text)
    for secret in sorted({*secrets_of(uri), *extra}, key=len, reverse=True):
        if len(secret) >= MIN_SECRET_CHARS:
            text = text.replace(secret, "***")
    return text


# Shorter strings would mask ordinary words (a query value "1" is no secret worth hiding).
MIN_SECRET_CHARS = 4
# Environment variables whose values are secrets (AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
# AZURE_STORAGE_CONNECTION_STRING, ...); a value this short is no key, and masking it
# would mask ordinary words.
_SECRET_VARIABLES = re.compile(
    r"SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|CONNECTION_STRING|SIGNATURE",
    re.IGNORECASE)
MIN_ENV_SECRET_CHARS = 8


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secrets the environment holds: what a library might echo in a debug log.

    The values of variables named like secrets, and the user-info of every
    URL-valued variable (``AWS_ENDPOINT_URL``, ``HTTPS_PROXY``, ...).
    """
    environ = os.environ if environ is None else environ
    found: set[str] = set()
    for name, value in environ.items():
        if _SECRET_VARIABLES.search(name) and len(value) >= MIN_ENV_SECRET_CHARS:
            found.add(value)
        if "://" in value and "@" in value:
            found.update(v for v in secrets_of(value.strip()) if len(v) >= MIN_SECRET_CHARS)
    return sorted(found, key=len, reverse=True)


# Characters no URL may hold raw (http.client refuses them: an internal error, not a hint).
_RAW_IN_URL = re.compile(r"[\x00-\x20\x7f]")


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` may not be used (a secret in it, a character a URL cannot hold), or None."""
    problem = credential_problem(uri) or malformed_problem(uri)
    if problem:
        return problem
    if is_remote(uri) and _RAW_IN_URL.search(uri):
        bad = _RAW_IN_URL.search(uri)
        assert bad is not None
        return (f"it holds {printable(repr(bad.group(0)))}, which a URL cannot hold as it is: "
                "write a space as %20 (percent-encode the others)")
    return None


def ascii_url(uri: str) -> str:
    """``uri`` with non-ASCII characters percent-encoded (as UTF-8), for urllib."""
    return quote(uri, safe="".join(chr(c) for c in range(0x21, 0x7f)))


def check_uri(uri: str) -> None:
    """Raise ConfigError if ``uri`` may not be used."""
    problem = uri_problem(uri)
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
        return Path(unquote(urlsplit(uri).path))  # file:///a%20b.txt names 'a b.txt
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
    """What identifies a corpus, however it is spelt: the same file named ``c.txt``,
    ``./c.txt``, ``sub/../c.txt``, by its absolute path or as ``file://`` has one key.

    A local file's key is its absolute, normalised path; a remote one's its redacted
    URI. Keys are made of redacted text, so the URI a lineage records (redacted)
    has the key of the URI it was read from.
    """
    if uri.startswith("model:"):
        return uri
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
