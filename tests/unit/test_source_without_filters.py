"""Uploaded sources unpack the same on a Python without tarfile's extraction filters
(3.11 before 3.11.4: Debian 12's own python3 is 3.11.2): the archive tests again,
with ``tarfile.data_filter`` gone, plus what the filter would have changed."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

import pytest

from craton_wf.builders.source import unpack_archive
from tests.unit.test_source import (  # noqa: F401 - collected here again, without filters
    dest,
    file_member,
    make_tar,
    test_a_declared_huge_member_is_refused_from_its_header,
    test_a_plain_archive_unpacks,
    test_hostile_members_are_refused_and_nothing_is_written,
    test_setuid_bits_are_dropped,
    test_too_many_bytes_are_refused,
    test_too_many_members_are_refused,
)


@pytest.fixture(autouse=True)
def no_extraction_filters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    real_extractall = tarfile.TarFile.extractall

    def without_filter(self, path=".", members=None, *, numeric_owner=False, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs:
            raise TypeError(
                f"extractall() got an unexpected keyword argument {next(iter(kwargs))!r}"
            )
        return real_extractall(self, path, members, numeric_owner=numeric_owner)

    monkeypatch.setattr(tarfile.TarFile, "extractall", without_filter)


def test_modes_are_the_data_filters(dest: Path) -> None:  # noqa: F811
    data = make_tar(
        file_member("group-writable", b"x", mode=0o666),
        file_member("setgid-tool", b"x", mode=0o2775),
        file_member("unreadable", b"x", mode=0o000),
        file_member("exec-by-others-only", b"x", mode=0o011),
    )

    unpack_archive(data, dest)

    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in dest.iterdir()}
    assert modes == {
        "group-writable": 0o644,
        "setgid-tool": 0o755,
        "unreadable": 0o600,
        "exec-by-others-only": 0o600,
    }
    assert {p.stat().st_uid for p in dest.iterdir()} == {os.geteuid()}
