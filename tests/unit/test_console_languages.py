"""Every label the triage console shows in Dutch has an English translation (the console's `?lang=en`)."""

from __future__ import annotations

import re
from pathlib import Path

from shared.i18n import ENGLISH, translator

TEMPLATES = [*Path("services/triage/console/templates").glob("*.html"), Path("shared/templates/base.html")]
LABEL = re.compile(r"""\bt\(["']([^"']+)["']\)""")


def test_every_translated_label_has_an_english_text() -> None:
    labels = {label for path in TEMPLATES for label in LABEL.findall(path.read_text())}
    assert len(labels) > 40
    assert sorted(labels - ENGLISH.keys()) == []


def test_dutch_is_the_default_and_english_is_chosen_explicitly() -> None:
    assert translator("nl")("Werklijst") == "Werklijst"
    assert translator("en")("Werklijst") == "Worklist"
    assert translator("en")("a label nobody translated") == "a label nobody translated"
