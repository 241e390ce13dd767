"""Where a config's store is, and whether that place may be a store at all.

``store: /``, the home folder, a folder inside another store (or inside a
store's cache), a cache folder inside a store, and a folder that holds other
files and no store marker are refused (78) by ``validate`` and by every
command, before anything is read or written there. An ``s3://`` store is
checked for its form here, and recognised by its marker when it is opened
(that needs the network).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from incremental_w2v.errors import ConfigError, DataError, InputMissingError
from incremental_w2v.fsutil import store_root_of
from incremental_w2v.store.backend import Backend
from incremental_w2v.store.local import LocalBackend
from incremental_w2v.store.store import Store
from incremental_w2v.uris import redact

if TYPE_CHECKING:
    from incremental_w2v.config.schema import Config


def check_local_place(path: Path) -> None:
    """Raise ConfigError if the folder ``path`` may never be a store."""
    real = Path(os.path.realpath(path))
    if real.parent == real:
        raise ConfigError(f"store {path} is the root of the file system",
                          hint="give the store a folder of its own, e.g. store: ./store")
    if real == Path(os.path.realpath(Path.home())):
        raise ConfigError(f"store {path} is your home folder",
                          hint="give the store a folder of its own, e.g. store: ~/w2v-store")
    outer = store_root_of(real.parent)
    if outer is not None:
        raise ConfigError(f"store {path} would be inside the incw2v store (or store cache) "
                          f"{outer}", hint="give the store a folder outside any other store")


def check_cache_place(config: Config) -> None:
    """Raise ConfigError if the local cache of a remote store (``store_options.cache_dir``,
    or wherever ``$INCW2V_CACHE_DIR`` and the defaults put it) would be inside a store: the
    config's own, or any folder that is a store or another store's cache. The cache
    deletes what it evicts, and a store's sweep what it did not write."""
    places = []
    if config.store_options.cache_dir:
        places.append(("store_options.cache_dir",
                       config._resolve(config.store_options.cache_dir)))
    if config.store_is_remote:
        from incremental_w2v.store.s3 import cache_root

        places.append(("the store's cache", cache_root(config)))
    own = () if config.store_is_remote else (config.store_path,)
    for name, place in places:
        outer = store_root_of(place, own)
        if outer is not None:
            raise ConfigError(
                f"{name} {place} would be inside the incw2v store (or store cache) {outer}",
                hint="give the cache a folder outside every store (store_options.cache_dir "
                "or $INCW2V_CACHE_DIR), e.g. ~/.cache/incw2v")


def backend_for(where: Config | Path | Backend) -> Backend:
    """The backend of a config's store (or of a local folder given as such)."""
    if isinstance(where, Backend):
        return where
    if isinstance(where, Path):
        return LocalBackend(where)
    check_cache_place(where)
    if where.store_is_remote:
        from incremental_w2v.store.s3 import S3Backend  # boto3 only for stores that need it

        return S3Backend.for_config(where)
    check_local_place(where.store_path)
    return LocalBackend(where.store_path)


def open_store(config: Config, create: bool = False, must_exist: bool = True) -> Store:
    """The config's store, recognised (``must_exist=False``: a place with no store yet
    gives an empty store, for ``status`` before the first run)."""
    store = Store(backend_for(config))
    try:
        store.recognise(create)
    except InputMissingError:
        if must_exist:
            raise
    return store


def check_publish_places(config: Config) -> None:
    """Raise ConfigError (78) naming every ``publish:`` target inside a store.

    A publish is an output, and no output is written inside a store: a local
    target inside the config's own store (even before it exists), inside any
    other store or a store's cache, after resolving symlinks; an S3 target at or
    under an S3 store's prefix (both are on the store's server, ``s3_endpoint``),
    where its files would make the prefix "not a store".
    """
    from incremental_w2v.config.store import split_s3

    problems: list[str] = []
    for index, entry in enumerate(config.publish):
        where = config.publish_location(entry)
        if where.lower().startswith("s3://"):
            if not config.store_is_remote:
                continue
            bucket, prefix = split_s3(where)
            store_bucket, store_prefix = split_s3(config.store)
            if bucket == store_bucket and (not store_prefix or prefix == store_prefix
                                           or prefix.startswith(store_prefix + "/")):
                problems.append(f"publish[{index}].to: {redact(entry.to)} is inside the "
                                f"store {config.store_location}")
            continue
        inside = store_root_of(Path(where), roots=() if config.store_is_remote
                               else (config.store_path,))
        if inside is not None:
            problems.append(f"publish[{index}].to: {where} is inside the incw2v store (or "
                            f"store cache) {inside}")
    if problems:
        raise ConfigError(
            f"{config.path}: {len(problems)} publish target(s) inside a store, whose files "
            "only incw2v itself may write", problems,
            hint="publish to a folder or prefix outside every store, e.g. beside it")


def check_place(config: Config) -> None:
    """``validate``'s check of the store's place (no network: an S3 store's form and its
    cache's place only), and of its publish targets'."""
    check_cache_place(config)
    check_publish_places(config)
    if config.store_is_remote:
        return
    # A new place, or a damaged store, is a store's place all the same.
    with contextlib.suppress(InputMissingError, DataError):
        Store.open(backend_for(config))
