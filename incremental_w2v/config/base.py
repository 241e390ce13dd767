"""The one strict base of every schema: an unknown key is an error, never ignored.

Config sections are frozen once validated; store records (the manifest) are
rewritten in place by the commands that steer a lineage, so they are not.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A config section: unknown keys are refused, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class StrictRecord(BaseModel):
    """A record the store writes and rewrites: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")
