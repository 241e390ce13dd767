"""No secret in any output: credentials in a URI of any scheme are refused or masked, query
values are shown only for parameters known to be harmless, and libraries' debug logs pass
through the same scrubber (stderr, the log file, --json, meta.json, manifest.json, the model).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import Result, package_env, run_subprocess, version_model
from incremental_w2v.uris import credential_problem, environment_secrets, redact, scrub
from test_crash_sweep import TINY_MODEL, write_workspace

SECRET = "Sentinel-9f3e1c-pw"
SCHEMES = ["s3", "s3a", "s3n", "s3u", "gs", "gcs", "azure", "http", "https", "ftp", "ftps",
           "sftp", "ssh", "scp", "hdfs", "webhdfs", "webdav", "file", "smb", "x-custom+tls"]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("userinfo", [f"KEY:{SECRET}", SECRET, f"{SECRET}:",
                                      f"us%40er:{SECRET}", f"a@b:{SECRET}"])
def test_userinfo_is_refused_and_redacted_for_every_scheme(scheme: str, userinfo: str) -> None:
    uri = f"{scheme}://{userinfo}@host.example:21/dir/file.txt"
    assert credential_problem(uri) is not None
    assert credential_problem(uri.upper().replace(scheme.upper(), scheme.upper())) is not None
    shown = redact(uri)
    assert SECRET not in shown and "%40" not in shown and shown.startswith(f"{scheme}://***@")
    assert SECRET not in scrub(f"failed: {uri} (and again {uri[len(scheme) + 3:]})", uri)
    assert redact(shown) == shown  # a recorded URI redacts to itself


@pytest.mark.parametrize("query", [
    f"client_secret={SECRET}", f"access_token={SECRET}", f"X-Amz-Signature={SECRET}",
    f"x-amz-security-token={SECRET}", f"sig={SECRET}", f"apikey={SECRET}", f"api-key={SECRET}",
    f"password={SECRET}", f"Session={SECRET}", f"refresh_token={SECRET}", f"auth={SECRET}",
    f"private_key={SECRET}", f"page=2&code={SECRET}",
])
def test_secret_query_parameters_are_refused(query: str) -> None:
    uri = f"https://h.example/x.txt?{query}"
    problem = credential_problem(uri)
    assert problem is not None and SECRET not in problem
    assert SECRET not in redact(uri)


@pytest.mark.parametrize(("query", "shown"), [
    (f"dataset={SECRET}&page=2", "dataset=***&page=2"),
    (f"page=2&x={SECRET}", "page=2&x=***"),
    (f"format=csv&Opaque={SECRET}&download", "format=csv&Opaque=***&download"),
    (f"a=1;token={SECRET}", "a=***"),
    (f"v={SECRET.replace('-', '%2D')}", "v=***"),
])
def test_query_values_are_masked_unless_the_parameter_is_known_to_be_harmless(
    query: str, shown: str
) -> None:
    uri = f"https://h.example/x.txt?{query}"
    assert redact(uri) == f"https://h.example/x.txt?{shown}"
    text = f"GET /x.txt?{query} failed; see {uri}"
    assert SECRET not in scrub(text, uri)
    assert SECRET.replace("-", "%2D") not in scrub(text, uri)


@pytest.mark.parametrize(("query", "shown"), [
    ("ghp_ABCDEF123456", "***"),
    (SECRET, "***"),
    (f"page=2&{SECRET}", "page=2&***"),
    (f"{SECRET}&download", "***&download"),
    (f"format=csv&{SECRET}&raw", "format=csv&***&raw"),
    (SECRET.replace("S", "%53"), "***"),
    (SECRET.replace("-", "+"), "***"),
    (f"={SECRET}", "=***"),
    (f"{SECRET}&{SECRET}x", "***&***"),
    ("download", "download"),
    ("DOWNLOAD&page=1", "DOWNLOAD&page=1"),
])
def test_a_query_component_without_a_name_is_masked_unless_harmless(
    query: str, shown: str
) -> None:
    uri = f"https://h.example/x.txt?{query}"
    assert redact(uri) == f"https://h.example/x.txt?{shown}"
    assert redact(redact(uri)) == redact(uri)
    text = f"GET /x.txt?{query} failed; see {uri}"
    for secret in (SECRET, SECRET.replace("-", "+"), SECRET.replace("-", " ")):
        assert secret not in scrub(text, uri), scrub(text, uri)
        assert secret not in redact(uri)


LOOSE_FORMS = ["{scheme}:/{userinfo}@host.example/dir/f.txt",  # one slash
               "{scheme}:{userinfo}@host.example/dir/f.txt",  # none
               "{scheme}:///{userinfo}@host.example/dir/f.txt",  # three
               "{scheme}:\\\\{userinfo}@host.example/dir/f.txt",  # backslashes
               "{scheme}:\\{userinfo}@host.example",
               "{scheme}:/{userinfo}@host.example?page=2#frag"]


@pytest.mark.parametrize("scheme", ["https", "http", "s3", "s3a", "ftp", "sftp", "file",
                                    "x-custom+tls"])
@pytest.mark.parametrize("form", LOOSE_FORMS)
@pytest.mark.parametrize("userinfo", [f"KEY:{SECRET}", SECRET, f"a@b:{SECRET}"])
def test_userinfo_after_one_or_no_slash_is_refused_and_redacted(
    scheme: str, form: str, userinfo: str
) -> None:
    uri = form.format(scheme=scheme, userinfo=userinfo)
    problem = credential_problem(uri)
    assert problem is not None and SECRET not in problem
    shown = redact(uri)
    assert SECRET not in shown and "***@host.example" in shown, shown
    assert redact(shown) == shown
    assert SECRET not in scrub(f"failed: {uri} (and {uri[len(scheme):]})", uri)


@pytest.mark.parametrize("uri", ["https:/host.example/f.txt", "s3:bucket/f.txt",
                                 "ftp:///host.example/f.txt", "HTTP:\\\\host/f.txt"])
def test_a_network_url_without_two_slashes_is_refused(uri: str) -> None:
    from incremental_w2v.uris import uri_problem

    problem = uri_problem(uri)
    assert problem is not None and "two slashes" in problem


@pytest.mark.parametrize("path", ["notes:v2.txt", "a:b.txt", "C:/data/x.txt", "./x:u@h.txt"])
def test_a_local_name_with_a_colon_is_not_a_uri(path: str) -> None:
    from incremental_w2v.uris import uri_problem

    assert uri_problem(path) is None and redact(path) == path


def test_a_fragment_is_masked() -> None:
    uri = f"https://h.example/x.txt#access_token={SECRET}"
    assert redact(uri) == "https://h.example/x.txt#***"


def test_environment_secrets_are_found() -> None:
    found = environment_secrets({
        "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": SECRET + "t",
        "AWS_ENDPOINT_URL": f"http://ak:{SECRET}x@minio:9000", "HTTPS_PROXY":
        f"http://u:{SECRET}p@proxy:3128", "HOME": "/root", "PWD": "/work/somewhere",
        "AWS_ACCESS_KEY_ID": "testing", "GITHUB_TOKEN": "short",
    })
    for value in (SECRET, SECRET + "t", SECRET + "x", SECRET + "p"):
        assert value in found
    assert "/root" not in found and "/work/somewhere" not in found and "short" not in found


def refused_everywhere(tmp_path: Path, cli: Callable[..., Result], where: str, uri: str
                       ) -> None:
    """A config with ``uri`` in the place ``where`` says: add-corpus (and validate) exit 78,
    and the secret shows in no output and no file or folder name."""
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    text = f"store: store\n{TINY_MODEL}base: {{corpus: a.txt}}\nlog_file: run.log\n"
    quoted = "'" + uri + "'"
    if where == "queue":
        text += f"queue: [{{uri: {quoted}}}]\n"
    elif where == "base":
        text = text.replace("corpus: a.txt", f"corpus: {quoted}")
    elif where == "endpoint":
        text += f"sources: {{s3_endpoint_url: {quoted}}}\n"
    elif where == "store":
        text = text.replace("store: store", f"store: {quoted}")
    elif where == "publish":
        text += f"publish: [{{to: {quoted}}}]\n"
    elif where == "log_file":
        text = text.replace("log_file: run.log", f"log_file: {quoted}")
    config = folder / "config.yaml"
    config.write_text(text)
    args = ["add-corpus", config] + ([uri] if where == "extra" else [])
    result = cli(*args)
    assert result.code == 78, result.err
    assert SECRET not in result.out + result.err
    assert "***@" in result.err, result.err
    if where != "extra":
        checked = cli("validate", config)
        assert checked.code == 78 and SECRET not in checked.out + checked.err
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "config.yaml"]
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in written)
    assert SECRET not in "".join(p.name for p in tmp_path.rglob("*"))  # no folder named so


@pytest.mark.parametrize("where", ["queue", "base", "endpoint", "store", "extra"])
def test_credentials_in_any_config_uri_are_refused_with_78(
    tmp_path: Path, cli: Callable[..., Result], where: str
) -> None:
    uri = {"endpoint": f"http://AKIA:{SECRET}@127.0.0.1:9",
           "store": f"ftp://u:{SECRET}@h/store"}.get(where, f"s3a://AKIA:{SECRET}@bucket/b.txt")
    refused_everywhere(tmp_path, cli, where, uri)


@pytest.mark.parametrize("where", ["queue", "base", "endpoint", "store", "extra", "publish",
                                   "log_file"])
@pytest.mark.parametrize("form", ["https:/AKIA:{s}@h.example/b.txt",
                                  "https:AKIA:{s}@h.example/b.txt",
                                  "s3a:///AKIA:{s}@bucket/b.txt",
                                  "ftp:\\\\u:{s}@h.example/b.txt"])
def test_malformed_uris_with_credentials_are_refused_with_78(
    tmp_path: Path, cli: Callable[..., Result], where: str, form: str
) -> None:
    refused_everywhere(tmp_path, cli, where, form.format(s=SECRET))


@pytest.mark.parametrize(("query", "recorded"), [
    (f"dataset={SECRET}&page=2", "dataset=***&page=2"),
    (SECRET, "b.txt?***"),  # a bare value (a token with no name)
    (f"page=2&{SECRET}", "page=2&***"),
])
def test_query_secrets_never_reach_any_output(
    tmp_path: Path, http_root: tuple[str, Path], cli: Callable[..., Result], query: str,
    recorded: str
) -> None:
    """A corpus whose URL holds an opaque value: it is read, and the value shows nowhere."""
    base_url, root = http_root
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    (root / "b.txt").write_bytes((folder / "b.txt").read_bytes())
    uri = f"{base_url}/b.txt?{query}"
    config = folder / "config.yaml"
    config.write_text(config.read_text() + f"log_file: run.log\nqueue:\n  - uri: '{uri}'\n")
    outputs = []
    run = run_subprocess("add-corpus", config, "--json", "--debug")  # urllib3 logs each GET
    assert run.returncode == 0, run.stderr
    outputs += [run.stdout, run.stderr]
    assert recorded in run.stdout  # the corpus as the lineage records it
    again = run_subprocess("add-corpus", config, "--json", "--debug")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["applied"] == []  # recognised under its redacted name
    outputs += [again.stdout, again.stderr]
    missing = run_subprocess("add-corpus", config, f"{base_url}/gone.txt?v={SECRET}", "--debug")
    assert missing.returncode == 66
    outputs += [missing.stdout, missing.stderr]
    for args in (["history", config, "--json"], ["status", config, "--json"],
                 ["history", config], ["status", config]):
        shown = cli(*args)
        outputs += [shown.out, shown.err]

    store = folder / "store"
    model = version_model(store, "v0002")
    outputs.append(json.dumps(model.lifecycle_events, default=str))
    haystack = "\n".join(outputs)
    assert "127.0.0.1" in run.stderr  # the debug log did talk about the request
    assert SECRET not in haystack
    for path in (folder / "run.log", store / "manifest.json",
                 *store.glob("versions/*/meta.json")):
        assert SECRET not in path.read_text(), path
    written = [p for p in folder.rglob("*") if p.is_file() and p.name != "config.yaml"]
    assert SECRET.encode() not in b"".join(p.read_bytes() for p in written)


def test_debug_logs_of_libraries_never_show_environment_credentials(
    tmp_path: Path, moto_endpoint: str
) -> None:
    """botocore logs its endpoint and requests at debug level; an endpoint given in the
    environment with credentials in it, and the secret key, must not come through."""
    pytest.importorskip("boto3")
    folder = tmp_path / "ws"
    write_workspace(folder, ())
    config = folder / "config.yaml"
    config.write_text(config.read_text() + "log_file: run.log\nqueue:\n"
                      "  - uri: s3://no-such-bucket/b.txt\n")
    host = moto_endpoint.split("://", 1)[1]
    env = package_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY=SECRET,
                      AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://ak:{SECRET}x@{host}")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        env.pop(name, None)
    run = run_subprocess("add-corpus", config, "--debug", env=env)
    assert run.returncode != 0  # the bucket does not exist; what matters is what it said
    assert "botocore" in run.stderr or "s3" in run.stderr
    text = run.stdout + run.stderr + (folder / "run.log").read_text()
    assert SECRET not in text and f"{SECRET}x" not in text
    assert os.environ.get("AWS_SECRET_ACCESS_KEY") != SECRET
