"""An independent scan for secrets in what the harness writes (cassettes, inbound captures, reports).

Scrubbing hooks have leaked before (docs/contracts/recording-and-reporting.md §3): this reads the files
as text, with its own patterns, and reports `file:line: kind` for anything that is not a placeholder.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.core import scrubbing
from harness.wire import tokens

PHONE = re.compile(r"(?<![\d+])\+[1-9]\d{9,14}(?!\d)")
PLACEHOLDER_PHONE = re.compile(r"^\+1555\d+$")
SIGNATURE = re.compile(r"Signature=(?!<signature>)[A-Za-z0-9+/=]{8,}")
BEARER = re.compile(r"(?i)Bearer (?!<token>|<scrubbed>)[A-Za-z0-9._~+/=-]{12,}")
ACCESS_KEY = re.compile(r"(?i)accesskey=([^;\s\"'&]+)")
ODATA_ANNOTATION = re.compile(r"@odata\.")
TEXT_SUFFIXES = {".yaml", ".yml", ".json", ".md", ".xml", ".html", ".txt", ".log"}


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    kind: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}"


def _line_findings(line: str, *, strict_ids: bool, secrets: tuple[str, ...] = ()) -> Iterator[str]:
    for secret in secrets:
        if secret and secret in line:
            yield "a secret of the active profile (password, key or client secret)"
    for match in tokens.JWT_PATTERN.finditer(line):
        if not match.group(0).endswith("."):
            yield "JWT with a signature (a real token)"
    if SIGNATURE.search(line):
        yield "HMAC signature"
    if BEARER.search(line):
        yield "bearer token"
    for match in ACCESS_KEY.finditer(line):
        if match.group(1) not in (scrubbing.ACS_ACCESS_KEY, "<connection-string>"):
            yield "ACS access key"
    for match in scrubbing.EMAIL.finditer(line):
        address = match.group(0)
        if not address.endswith("@" + scrubbing.UPN_DOMAIN) and not ODATA_ANNOTATION.search(line[match.start() :]):
            yield "e-mail address or UPN"
    for match in PHONE.finditer(line):
        if not PLACEHOLDER_PHONE.match(match.group(0)):
            yield "phone number"
    if strict_ids:
        for match in scrubbing.GUID.finditer(line):
            value = match.group(0).lower()
            if not scrubbing.PLACEHOLDER_GUID.match(value) and value not in scrubbing.PUBLIC_GUIDS:
                yield "object, tenant or resource id (a GUID that is not a placeholder)"


def scan_file(path: Path, *, strict_ids: bool, secrets: tuple[str, ...] = ()) -> list[Finding]:
    findings = []
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return [Finding(path, 0, "unreadable or not UTF-8 text")]
    for number, line in enumerate(text.splitlines(), start=1):
        kinds = dict.fromkeys(_line_findings(line, strict_ids=strict_ids, secrets=secrets))
        findings.extend(Finding(path, number, kind) for kind in kinds)
    return findings


def scan(paths: Iterable[Path], secrets: Iterable[str] = ()) -> list[Finding]:
    """Every finding under `paths`. GUIDs must all be placeholders in cassettes; reports keep request ids.
    `secrets` are values of the active profile (passwords, keys) that must appear nowhere."""
    known = tuple(s for s in secrets if len(s) >= 6)
    findings: list[Finding] = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            if path.suffix.lower() in TEXT_SUFFIXES:
                strict = "cassettes" in path.parts
                findings.extend(scan_file(path, strict_ids=strict, secrets=known))
    return findings
