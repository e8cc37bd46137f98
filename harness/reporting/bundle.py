"""`cte run --bundle`: one zip safe to attach to a support ticket.

It holds the run's reports (already redacted), the profile with its identifiers replaced by the
placeholders recordings use, the harness version, and the SHA-256 of every cassette.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from harness import __version__
from harness.core import scrubbing
from harness.core.cassettes import CASSETTE_ROOT
from harness.core.config import load_profile


def redacted_profile(name: str) -> str:
    profile = load_profile(name)
    text = profile.path.read_text(encoding="utf-8") if profile.path else ""
    tenant = profile.data.get("tenant", {}) if isinstance(profile.data.get("tenant"), dict) else {}
    known = {}
    if tenant.get("tenant_id"):
        known[str(tenant["tenant_id"])] = scrubbing.TENANT_ID
    if tenant.get("client_id"):
        known[str(tenant["client_id"])] = scrubbing.CLIENT_ID
    for alias, user in (profile.data.get("users") or {}).items():
        if isinstance(user, dict) and user.get("upn"):
            known[str(user["upn"])] = f"{alias}@{scrubbing.UPN_DOMAIN}"
    scrubber = scrubbing.Scrubber(known)
    return "\n".join(scrubber.text(line) for line in text.splitlines()) + "\n"


def write_bundle(report_dir: Path, profile: str) -> Path:
    target = report_dir.with_suffix(".zip")
    digests = (
        {
            str(path.relative_to(CASSETTE_ROOT.parent)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(CASSETTE_ROOT.rglob("*.yaml"))
        }
        if CASSETTE_ROOT.is_dir()
        else {}
    )
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in report_dir.rglob("*") if p.is_file()):
            archive.write(path, f"reports/{path.relative_to(report_dir)}")
        archive.writestr("profile.toml", redacted_profile(profile))
        archive.writestr(
            "harness.json", json.dumps({"harness_version": __version__, "cassettes": digests}, indent=2, sort_keys=True)
        )
    return target
