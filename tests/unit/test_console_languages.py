"""Every label the translated consoles show in Dutch has an English translation (`?lang=en`): the triage console,
the partner console on coordination, and the labels the partner console builds in Python."""

from __future__ import annotations

import re
from pathlib import Path

from services.billing_shadow.console import evaluation, formats
from services.billing_shadow.console import views as billing_views
from services.billing_shadow.domain.seed import DESCRIPTIONS
from services.coordination import episodes
from services.coordination.console import partner, partner_cards
from services.coordination.domain import words
from services.coordination.domain.person import GENDERS
from services.triage.domain.rules import DISPOSITIONS
from shared.i18n import ENGLISH, translator

TEMPLATES = [*Path("services/triage/console/templates").glob("*.html"),
             *Path("services/coordination/console/templates").glob("*.html"), *Path("shared/templates").glob("*.html"),
             *Path("services/billing_shadow/console/templates").glob("*.html")]
LABEL = re.compile(r"""\bt\(["']([^"']+)["']\)""")
CASE_MANAGER_CODE = [Path("services/coordination/console/views.py"), Path("services/coordination/console/timeline.py")]
PLACEHOLDER = re.compile(r"\{\w+\}")


def test_every_translated_label_has_an_english_text() -> None:
    labels = {label for path in TEMPLATES for label in LABEL.findall(path.read_text())}
    assert len(labels) > 70
    assert {"Triagenotitie", "Contact vastleggen en afronden", "Werklijst"} <= labels
    assert sorted(labels - ENGLISH.keys()) == []


def test_the_partner_consoles_own_labels_and_messages_have_english_with_the_same_placeholders() -> None:
    texts = [*partner_cards.STATUS_LABELS.values(), *partner_cards.ACTION_LABELS.values(),
             *partner_cards.GENDER_LABELS.values(), *partner_cards.CONTACT_LABELS.values(),
             *partner_cards.REFUSALS.values(), *partner.DONE.values(), *DISPOSITIONS.values()]
    assert sorted(set(texts) - ENGLISH.keys()) == []

    for text in texts:
        assert sorted(PLACEHOLDER.findall(ENGLISH[text])) == sorted(PLACEHOLDER.findall(text)), text


def test_the_billing_consoles_error_messages_have_english() -> None:
    views = Path("services/billing_shadow/console/views.py").read_text()
    messages = set(re.findall(r"_error\(request, user, \d+, \"([^\"]+)\"", views))
    assert {"Ongeldige periode", "Onbekende aanvraag"} <= messages
    assert sorted(messages - ENGLISH.keys()) == []


def test_dutch_is_the_default_and_english_is_chosen_explicitly() -> None:
    assert translator("nl")("Werklijst") == "Werklijst"
    assert translator("en")("Werklijst") == "Worklist"
    assert translator("en")("a label nobody translated") == "a label nobody translated"


def test_the_billing_consoles_own_words_have_english_with_the_same_placeholders() -> None:
    texts = [*formats.CODE_NAMES.values(), *formats.CLASS_NAMES.values(), *formats.EXCLUSION_NAMES.values(),
             *formats.KIND_NAMES.values(), *formats.STATUS_NAMES.values(), formats.CONTACT, formats.DECISIVE,
             formats.TRIAGE_ONLY, formats.CANCELS, formats.NO_PRESTATION, formats.NOT_CLAIMED, formats.NO_TARIFF,
             formats.TARIFF,
             *billing_views.CORRECTION_REFUSALS.values(), *(title for _, title, _ in evaluation.SHARES),
             *(title for _, title in evaluation.MINUTES), *evaluation.URGENCY_TARGETS.values(), *DESCRIPTIONS.values()]
    assert sorted(set(texts) - ENGLISH.keys()) == []
    for text in texts:
        assert sorted(PLACEHOLDER.findall(ENGLISH[text])) == sorted(PLACEHOLDER.findall(text)), text


def test_the_case_manager_consoles_words_and_messages_have_english_with_the_same_placeholders() -> None:
    tables = [getattr(words, name) for name in dir(words) if name.endswith("_LABELS")]
    texts = {text for table in tables for text in table.values()} | set(GENDERS.values()) | {episodes.ACUTE_CARE}
    # Messages the views build in Python, the ones over two string literals joined first.
    code = "\n".join(re.sub(r'"\s*\n\s*"', "", path.read_text()) for path in CASE_MANAGER_CODE)
    texts |= set(LABEL.findall(code))
    assert {"gekoppeld contact", "nieuw", "telefoon", "naaste", "Kies een organisatie uit de lijst."} <= texts
    assert "{name} is gesloten op de streeftijd ({due}): geef een reden of kies een andere organisatie." in texts
    assert sorted(texts - ENGLISH.keys()) == []
    for text in texts:
        assert sorted(PLACEHOLDER.findall(ENGLISH[text])) == sorted(PLACEHOLDER.findall(text)), text


def test_every_role_is_named_in_words_in_both_languages() -> None:
    from shared.console import ROLE_NAMES, ROLE_SCOPES

    assert ROLE_NAMES.keys() == ROLE_SCOPES.keys()
    assert sorted(set(ROLE_NAMES.values()) - ENGLISH.keys()) == []
    assert translator("en")(ROLE_NAMES["declaratie"]) == "billing officer"
