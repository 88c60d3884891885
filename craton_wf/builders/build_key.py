"""What makes two builds of a task the same build: the build key.

A build's image is a function of its inputs: the files of the build context,
the Dockerfile (its path and text), the images it starts from, the build
arguments (the platform passes none) and the labels the platform gives the
image. The build key is a SHA-256 over all of them, and an image is labelled
with the key of the build that made it; a later build with the same key
reuses that image instead of running ``docker build`` at all (see
:meth:`craton_wf.builders.image.ImageBuilder.build`).

Choices:

- The context is hashed file by file (relative path, kind, permission bits,
  content or link target), sorted, without modification times: unpacking the
  same upload or checking out the same commit again gives the same digest.
  The checkout's ``.git`` at the top of the context is left out (its index
  carries timestamps); the source's commit, or the upload's SHA-256, is in the
  labels and so in the key anyway. ``.dockerignore`` is not applied: an
  ignored file that changed only costs a real build.
- Base images are the ``FROM`` images and the ``COPY --from`` images that are
  not earlier stages, each as resolved on the engine (its image id), so
  re-tagging a base (a new ``craton/busybox:latest``) changes the key.
  ``FROM`` may use the Dockerfile's global ``ARG`` defaults (``$NAME`` or
  ``${NAME}``); any other expansion, or a base the engine does not have, gives
  no key: the build runs, as it would without reuse.
- Labels that say which build made an image (:data:`ORIGIN_LABELS`) are left
  out: an unchanged rebuild gets the very image, with the same digest, and the
  image still names the build that made it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

BUILD_KEY_LABEL = "craton.build-key"
BUILT_AS_LABEL = "craton.built-as"  # the tag the image was built as
# Labels naming the build that made the image, not what is in it.
ORIGIN_LABELS = frozenset({"craton.build", BUILT_AS_LABEL})
# Bumped whenever how an image is made from the same inputs changes.
KEY_VERSION = 1

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z]+)\s*=\s*(\S+)\s*$")
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_CHUNK_BYTES = 1024 * 1024


def context_digest(context: Path) -> str:
    """A SHA-256 of the files under ``context``, as described in the module docstring."""
    digest = hashlib.sha256()
    for relative, path in _entries(context):
        info = os.lstat(path)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISDIR(info.st_mode):
            kind = "dir"
        elif stat.S_ISLNK(info.st_mode):
            kind = "link:" + os.readlink(path)
        elif stat.S_ISREG(info.st_mode):
            kind = "file:" + _file_digest(path)
        else:
            kind = "other"
        digest.update(f"{relative}\0{mode:o}\0{kind}\n".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _entries(context: Path, prefix: str = "") -> Iterator[tuple[str, str]]:
    with os.scandir(context) as scan:
        entries = sorted(scan, key=lambda entry: entry.name)
    for entry in entries:
        if not prefix and entry.name == ".git":
            continue
        relative = prefix + entry.name
        yield relative, entry.path
        if entry.is_dir(follow_symlinks=False):
            yield from _entries(Path(entry.path), relative + "/")


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of each instruction, continuation lines joined."""
    lines = text.splitlines()
    escape = "\\"
    for line in lines:  # parser directives come first, before any other line
        directive = _DIRECTIVE.match(line)
        if not directive:
            break
        if directive.group(1).lower() == "escape":
            escape = directive.group(2)
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#"):
            continue  # comments, also inside a continued instruction
        if stripped.endswith(escape):
            pending += stripped[: -len(escape)] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            word, _, rest = whole.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    if pending.strip():
        word, _, rest = pending.strip().partition(" ")
        instructions.append((word.upper(), rest.strip()))
    return instructions


def base_images(text: str) -> list[str] | None:
    """The images a Dockerfile starts from or copies from; None when one of them is
    only known once the build runs (an expansion other than a global ``ARG``'s default)."""
    global_args: dict[str, str] = {}
    stages: set[str] = set()  # names and indices of the stages so far
    images: list[str] = []
    seen_from = False
    for instruction, arguments in dockerfile_instructions(text):
        words = arguments.split()
        if instruction == "ARG" and not seen_from:
            for word in words:
                name, _, default = word.partition("=")
                global_args[name] = default.strip("\"'")
        elif instruction == "FROM":
            seen_from = True
            words = [word for word in words if not word.startswith("--")]
            if not words:
                return None
            image = _expand(words[0], global_args)
            if image is None:
                return None
            if image.lower() not in stages and image != "scratch":
                images.append(image)
            if len(words) >= 3 and words[1].lower() == "as":
                stages.add(words[2].lower())
            stages.add(str(sum(1 for name in stages if name.isdigit())))
        elif instruction == "COPY":
            for word in words:
                if word.startswith("--from="):
                    source = word.removeprefix("--from=")
                    if "$" in source:
                        return None
                    if source.lower() not in stages:
                        images.append(source)
    return images


def _expand(word: str, variables: Mapping[str, str]) -> str | None:
    def value(match: re.Match[str]) -> str:
        return variables.get(match.group(1) or match.group(2), "")

    expanded = _VARIABLE.sub(value, word)
    return None if "$" in expanded or not expanded else expanded


@dataclass(frozen=True)
class BuildInputs:
    """Everything that decides what a build makes."""

    context_sha256: str
    dockerfile: str  # its path, relative to the context
    dockerfile_sha256: str
    base_image_ids: dict[str, str]  # reference -> image id on the engine
    labels: dict[str, str]  # without ORIGIN_LABELS
    build_args: dict[str, str]

    def key(self) -> str:
        material = json.dumps(
            {"version": KEY_VERSION, **self.__dict__}, sort_keys=True, separators=(",", ":")
        )
        return "sha256:" + hashlib.sha256(material.encode()).hexdigest()


def build_inputs(
    context: Path,
    dockerfile: str,
    labels: Mapping[str, str],
    resolve_image: Callable[[str], str | None],
) -> BuildInputs | None:
    """The inputs of building ``context`` with ``dockerfile``; None when a base image
    cannot be known before the build (``resolve_image`` answers its id, or None)."""
    text = (context / dockerfile).read_bytes()
    references = base_images(text.decode("utf-8", "replace"))
    if references is None:
        return None
    base_ids: dict[str, str] = {}
    for reference in references:
        image_id = resolve_image(reference)
        if image_id is None:
            return None
        base_ids[reference] = image_id
    return BuildInputs(
        context_sha256=context_digest(context),
        dockerfile=dockerfile,
        dockerfile_sha256=hashlib.sha256(text).hexdigest(),
        base_image_ids=base_ids,
        labels={name: value for name, value in labels.items() if name not in ORIGIN_LABELS},
        build_args={},
    )
