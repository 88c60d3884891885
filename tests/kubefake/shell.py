"""The little shell the fake Kubernetes cluster runs its containers with.

Tests describe what a container does as a ``sh -c`` script, so the same test
runs against a real cluster (with a busybox image) and against
:mod:`tests.kubefake`. This interprets the part of ``sh`` those
scripts use: quoting, ``$1`` / ``$NAME`` / ``${NAME}`` expansion, ``;``,
newlines, ``&&``, ``||``, ``while``/``for`` loops, output redirection to
stderr or ``/dev/null``, and the commands ``echo``, ``printf``, ``sleep``,
``exit``, ``true``, ``false``, ``:``, ``trap … TERM``, ``exec`` and ``id -u``.

Signals follow a container's pid 1: SIGTERM does nothing unless a ``trap``
handles it (the handler runs once the current command returns; ``sleep``
returns early), and SIGKILL ends the script wherever it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol


class Killed(Exception):
    """The container got SIGKILL."""


class Exited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class Process(Protocol):
    """What a script sees of its container."""

    args: list[str]
    env: dict[str, str]
    user: int
    trap: str | None

    def write(self, data: bytes) -> None: ...

    def sleep(self, seconds: float) -> None:
        """Raises ``Killed``; returns early when a trapped SIGTERM arrives."""

    def take_term(self) -> bool:
        """Whether a SIGTERM arrived since the last call."""


@dataclass
class Word:
    parts: list[tuple[str, str]] = field(default_factory=list)  # ("lit" | "var", text)

    @property
    def literal(self) -> str | None:
        if all(kind == "lit" for kind, _ in self.parts):
            return "".join(text for _, text in self.parts)
        return None


_OPERATORS = ("&&", "||", ";", "\n")
_REDIRECT = re.compile(r"[0-9]?>(&[0-9]|\s*/dev/null)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@#?]")


def tokenize(script: str) -> list[Word | str]:
    """Words and operators (``;``, newline, ``&&``, ``||``, redirections as ``>…``)."""
    tokens: list[Word | str] = []
    word: Word | None = None
    i = 0

    def add(kind: str, text: str) -> None:
        nonlocal word
        if word is None:
            word = Word()
        if kind == "lit" and word.parts and word.parts[-1][0] == "lit":
            word.parts[-1] = ("lit", word.parts[-1][1] + text)
        else:
            word.parts.append((kind, text))

    def end_word() -> None:
        nonlocal word
        if word is not None:
            tokens.append(word)
            word = None

    def expansion(at: int) -> int:
        if script.startswith("${", at):
            close = script.index("}", at)
            add("var", script[at + 2 : close])
            return close + 1
        match = _NAME.match(script, at + 1)
        if match is None:
            add("lit", "$")
            return at + 1
        add("var", match.group())
        return match.end()

    while i < len(script):
        char = script[i]
        redirect = _REDIRECT.match(script, i) if word is None or char == ">" else None
        if redirect:
            end_word()
            tokens.append(">" + redirect.group().split(">", 1)[1].strip())
            i = redirect.end()
        elif char == "#" and word is None:
            i = script.find("\n", i) if "\n" in script[i:] else len(script)
        elif script.startswith(("&&", "||"), i):
            end_word()
            tokens.append(script[i : i + 2])
            i += 2
        elif char in ";\n":
            end_word()
            tokens.append(char)
            i += 1
        elif char in " \t":
            end_word()
            i += 1
        elif char == "'":
            close = script.index("'", i + 1)
            add("lit", script[i + 1 : close])
            i = close + 1
        elif char == '"':
            i += 1
            if word is None:
                word = Word([("lit", "")])
            while script[i] != '"':
                if script[i] == "\\" and script[i + 1] in '"\\$`':
                    add("lit", script[i + 1])
                    i += 2
                elif script[i] == "$":
                    i = expansion(i)
                else:
                    add("lit", script[i])
                    i += 1
            i += 1
        elif char == "\\":
            add("lit", script[i + 1 : i + 2])
            i += 2
        elif char == "$":
            i = expansion(i)
        else:
            add("lit", char)
            i += 1
    end_word()
    return tokens


@dataclass
class Simple:
    words: list[Word]
    redirect: str | None = None  # "&2" or "/dev/null"


@dataclass
class Loop:
    kind: str  # "while" | "for"
    condition: list[AndOr]  # while: the condition
    variable: str = ""
    items: list[Word] = field(default_factory=list)
    body: list[AndOr] = field(default_factory=list)


Command = Simple | Loop


@dataclass
class AndOr:
    first: Command
    rest: list[tuple[str, Command]] = field(default_factory=list)


class Parser:
    def __init__(self, tokens: list[Word | str]) -> None:
        self.tokens = tokens
        self.at = 0

    def peek_keyword(self) -> str | None:
        if self.at < len(self.tokens):
            token = self.tokens[self.at]
            if isinstance(token, Word):
                return token.literal
        return None

    def expect(self, keyword: str) -> None:
        if self.peek_keyword() != keyword:
            raise SyntaxError(f"sh: syntax error: expected {keyword}")
        self.at += 1

    def skip_separators(self) -> None:
        while self.at < len(self.tokens) and self.tokens[self.at] in (";", "\n"):
            self.at += 1

    def parse_list(self, *enders: str) -> list[AndOr]:
        commands: list[AndOr] = []
        self.skip_separators()
        while self.at < len(self.tokens) and self.peek_keyword() not in enders:
            commands.append(self.parse_and_or())
            self.skip_separators()
        return commands

    def parse_and_or(self) -> AndOr:
        chain = AndOr(self.parse_command())
        while self.at < len(self.tokens) and self.tokens[self.at] in ("&&", "||"):
            operator = str(self.tokens[self.at])
            self.at += 1
            chain.rest.append((operator, self.parse_command()))
        return chain

    def parse_command(self) -> Command:
        keyword = self.peek_keyword()
        if keyword == "while":
            self.at += 1
            condition = self.parse_list("do")
            self.expect("do")
            body = self.parse_list("done")
            self.expect("done")
            return Loop("while", condition, body=body)
        if keyword == "for":
            self.at += 1
            variable = self.peek_keyword() or ""
            self.at += 1
            self.expect("in")
            items: list[Word] = []
            while isinstance(self.tokens[self.at], Word) and self.peek_keyword() != "do":
                items.append(self.tokens[self.at])  # type: ignore[arg-type]
                self.at += 1
            self.skip_separators()
            self.expect("do")
            body = self.parse_list("done")
            self.expect("done")
            return Loop("for", [], variable=variable, items=items, body=body)
        command = Simple([])
        while self.at < len(self.tokens) and self.tokens[self.at] not in _OPERATORS:
            token = self.tokens[self.at]
            if isinstance(token, Word):
                command.words.append(token)
            else:
                command.redirect = token[1:]
            self.at += 1
        return command


_ESCAPES = re.compile(r"\\([0-7]{1,3}|.)", re.S)
_SIMPLE_ESCAPES = {"n": b"\n", "t": b"\t", "\\": b"\\", "r": b"\r", "a": b"\a"}


def _unescape(text: str) -> bytes:
    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code.isdigit():
            return chr(int(code, 8))
        return _SIMPLE_ESCAPES.get(code, b"\\" + code.encode()).decode("latin-1")

    # latin-1 keeps every byte an octal escape names; other text stays UTF-8.
    out = bytearray()
    last = 0
    for match in _ESCAPES.finditer(text):
        out += text[last : match.start()].encode()
        out += replace(match).encode("latin-1")
        last = match.end()
    return bytes(out + text[last:].encode())


def _printf(fmt: str, args: list[str]) -> bytes:
    template = _unescape(fmt)
    out = bytearray()
    queue = list(args)
    while True:
        pieces = re.split(rb"(%[sd%])", template)
        for piece in pieces:
            if piece == b"%%":
                out += b"%"
            elif piece in (b"%s", b"%d"):
                out += (queue.pop(0) if queue else "").encode()
            else:
                out += piece
        if not queue or b"%s" not in template and b"%d" not in template:
            return bytes(out)


class Shell:
    def __init__(self, process: Process, positional: list[str]) -> None:
        self.process = process
        self.positional = positional  # $0, $1, …
        self.variables: dict[str, str] = {}
        self.status = 0
        self.in_trap = False

    def expand(self, word: Word) -> str:
        out = []
        for kind, text in word.parts:
            if kind == "lit":
                out.append(text)
            elif text.isdigit():
                index = int(text)
                out.append(self.positional[index] if index < len(self.positional) else "")
            elif text == "#":
                out.append(str(max(len(self.positional) - 1, 0)))
            elif text == "?":
                out.append(str(self.status))
            elif text == "@":
                out.append(" ".join(self.positional[1:]))
            else:
                out.append(self.variables.get(text, self.process.env.get(text, "")))
        return "".join(out)

    def run_list(self, commands: list[AndOr]) -> int:
        for chain in commands:
            self.run_and_or(chain)
        return self.status

    def run_and_or(self, chain: AndOr) -> None:
        self.run_command(chain.first)
        for operator, command in chain.rest:
            if (operator == "&&") == (self.status == 0):
                self.run_command(command)

    def run_command(self, command: Command) -> None:
        if isinstance(command, Loop):
            self.run_loop(command)
        else:
            self.status = self.run_simple(command)
        self.check_term()

    def run_loop(self, loop: Loop) -> None:
        if loop.kind == "for":
            for item in [self.expand(word) for word in loop.items]:
                self.variables[loop.variable] = item
                self.run_list(loop.body)
            return
        while self.run_list(loop.condition) == 0:
            self.run_list(loop.body)

    def check_term(self) -> None:
        if self.in_trap or not self.process.take_term() or not self.process.trap:
            return
        self.in_trap = True
        try:
            self.run_list(Parser(tokenize(self.process.trap)).parse_list())
        finally:
            self.in_trap = False

    def run_simple(self, command: Simple) -> int:
        words = [self.expand(word) for word in command.words]
        if not words:
            return self.status
        name, args = words[0], words[1:]
        if name == "exec":
            self.process.trap = None  # a program exec'd in pid 1 does not inherit handlers
            status = self.run_simple(Simple(command.words[1:], command.redirect))
            raise Exited(status)

        def out(data: bytes) -> None:
            if command.redirect != "/dev/null":
                self.process.write(data)

        if name == "echo":
            out(" ".join(args).encode() + b"\n")
        elif name == "printf":
            out(_printf(args[0], args[1:]) if args else b"")
        elif name == "sleep":
            self.process.sleep(float(args[0]) if args else 0.0)
        elif name == "exit":
            raise Exited(int(args[0]) if args else self.status)
        elif name in ("true", ":"):
            return 0
        elif name == "false":
            return 1
        elif name == "trap":
            self.process.trap = args[0] if args and args[0] not in ("", "-") else None
        elif name == "id" and args == ["-u"]:
            out(f"{self.process.user}\n".encode())
        else:
            self.process.write(f"sh: {name}: not found\n".encode())
            return 127
        return 0


def run_shell(process: Process) -> int:
    """Run the container's ``sh -c SCRIPT [$0 [$1 …]]`` (or one command); its exit code."""
    args = list(process.args)
    if len(args) >= 3 and args[0] in ("sh", "/bin/sh") and args[1] == "-c":
        script, positional = args[2], args[3:] or ["sh"]
    else:
        script, positional = " ".join(_quote(arg) for arg in args), ["sh"]
    shell = Shell(process, positional)
    try:
        return shell.run_list(Parser(tokenize(script)).parse_list())
    except Exited as exc:
        return exc.code
    except (SyntaxError, ValueError, IndexError) as exc:
        process.write(f"sh: {exc}\n".encode())
        return 2


def _quote(arg: str) -> str:
    return "'" + arg.replace("'", "'\\''") + "'"
