"""The project's paperwork: a license, one version, a changelog that names it, and a README
that says where each is (issue 24, point 11)."""

from __future__ import annotations

import re

from planning import ROOT

VERSION = (ROOT / "VERSION").read_text()
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)")


def test_the_version_is_one_semantic_version_on_one_line():
    assert VERSION.endswith("\n") and VERSION.count("\n") == 1
    assert SEMVER.fullmatch(VERSION.strip()), VERSION


def test_the_changelog_has_the_version_and_an_unreleased_section():
    text = (ROOT / "CHANGELOG.md").read_text()
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.M)
    assert headings[0] == ("Unreleased", "")
    released = headings[1:]
    assert released, "no release in CHANGELOG.md"
    # The newest release is the version in VERSION, dated.
    newest, rest = released[0]
    assert newest == VERSION.strip()
    assert re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), rest
    for version, _ in released:
        assert SEMVER.fullmatch(version), version


def test_the_license_is_the_whole_apache_2_0_text():
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License\n")
    assert "Version 2.0, January 2004" in text
    for section in range(1, 10):
        assert re.search(rf"^\s*{section}\. \w", text, re.M), f"section {section} missing"
    assert "END OF TERMS AND CONDITIONS" in text
    assert "APPENDIX: How to apply the Apache License to your work." in text


def test_the_readme_names_the_version_file_the_changelog_and_the_license():
    text = (ROOT / "README.md").read_text()
    for link in ("[`VERSION`](VERSION)", "[`CHANGELOG.md`](CHANGELOG.md)", "[`LICENSE`](LICENSE)"):
        assert link in text
    assert "Apache License 2.0" in text
    # One place: the README names the file, never the number.
    version = re.escape(VERSION.strip())
    assert not re.search(rf"(?<![\d.]){version}(?![\d.])", text)
