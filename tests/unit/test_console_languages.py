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
    asked = "{username} uitschakelen? Die wordt overal uitgelogd en kan niet meer inloggen."  # the admin's confirm
    assert asked in labels and PLACEHOLDER.findall(ENGLISH[asked]) == ["{username}"]
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


def test_refusals_a_service_gives_have_console_words_in_both_languages_with_the_same_placeholders() -> None:
    from services.billing_shadow.console import formats as billing_formats
    from services.coordination.console import refusals
    from services.triage.console import forms

    texts = [*refusals.REFUSALS.values(), refusals.OTHER, *billing_views.TARIFF_REFUSALS.values(),
             billing_views.CORRECTION_REFUSED, billing_views.VALID_FROM_INVALID, *evaluation.PERIOD_REFUSALS.values(),
             evaluation.EVALUATION_REFUSED, forms.TARGET_INVALID, forms.HOURS_INVALID, forms.SETTINGS_NOT_SAVED,
             *re.findall(r'ValueError\("([^"]+)"\)', Path(billing_formats.__file__).read_text())]
    assert "De prijs moet groter dan nul zijn." in texts
    assert sorted(set(texts) - ENGLISH.keys()) == []
    for text in texts:
        assert sorted(PLACEHOLDER.findall(ENGLISH[text])) == sorted(PLACEHOLDER.findall(text)), text


def test_coordination_refusals_are_said_by_their_code_and_field_not_their_english_text() -> None:
    from services.coordination.console import refusals
    from shared.fhir import Issue

    english = translator("en")
    closed = Issue("error", "business-rule", "Huisartsenpraktijk De Linde is closed at the due time 30-11 21:10",
                   ("Task.statusReason",))
    values = {"name": "Huisartsenpraktijk De Linde", "due": "30-11 21:10", "action": "Home visit"}
    assert refusals.said("reassign", [closed], values, english) == (
        "Huisartsenpraktijk De Linde is closed at the due time (30-11 21:10): give a reason or choose another "
        "organisation.")
    assert refusals.said("reassign", [closed], values, translator("nl")).startswith(
        "Huisartsenpraktijk De Linde is gesloten op de streeftijd (30-11 21:10)")
    done = Issue("error", "business-rule", "a Task that is completed is not escalated")
    assert refusals.said("escalate", [done], {"status": "completed"}, english) == (
        "A Task that is completed is no longer escalated.")
    assert refusals.said("take", [Issue("error", "forbidden", "no")], {}, english) == "You may not make this change."
    # One the console does not know keeps the service's text, inside a sentence in the console's language.
    odd = Issue("error", "processing", "the patch cannot be applied")
    assert refusals.said("reassign", [odd], {}, translator("nl")) == (
        "De actie is geweigerd, er is niets veranderd: the patch cannot be applied")


def test_billing_refusals_are_said_by_their_kind_with_the_values_they_quote() -> None:
    from datetime import date

    from services.billing_shadow.domain.evaluation import months_between
    from services.billing_shadow.domain.tariffs import Tariff, close_for_new_version
    from shared.refusals import Refused, words

    try:
        close_for_new_version([Tariff("shadow", "VIS", 11000, date(2026, 1, 1), None, "x")], key="shadow",
                              code="VIS", valid_from=date(2026, 1, 1), today=date(2025, 12, 1))
    except Refused as exc:
        assert billing_views.tariff_refusal(exc, "en") == (
            "There is already a version of VIS starting on 01-01-2026; choose a later date.")
        assert billing_views.tariff_refusal(exc, "nl") == str(exc)
    else:
        raise AssertionError("a second version on the same day was accepted")
    assert billing_views.tariff_refusal(ValueError("De prijs moet groter dan nul zijn."), "en") == (
        "The price must be more than zero.")
    try:
        months_between("2026-05", "2026-02")
    except Refused as exc:
        assert exc.kind == "from-after-to" and str(exc) == "from (2026-05) is after to (2026-02)"
        assert words(evaluation.PERIOD_REFUSALS[exc.kind], exc.values, translator("en")) == (
            "The first month (2026-05) is after the last (2026-02).")
    else:
        raise AssertionError("a reversed period was accepted")
    assert billing_views.correction_refusal(Refused("same-insurer", "the line is already for UZOVI 9001"), "en") == (
        "The line is already for this insurer.")
    assert billing_views.correction_refusal(LookupError("no prestation line x"), "en") == (
        "This line is not known (any more); refresh the page.")
    assert billing_views.correction_refusal(Refused("new-rule", "something new"), "en") == (
        "The correction was refused: something new")


def test_every_service_is_named_in_words_in_both_languages() -> None:
    from shared.console import SERVICE_NAMES

    assert sorted(set(SERVICE_NAMES.values()) - ENGLISH.keys()) == []
    assert translator("en")(SERVICE_NAMES["billing_shadow"]) == "shadow billing"


def test_time_to_target_reads_in_minutes_hours_or_days_in_both_languages() -> None:
    from shared.console import duration

    dutch, english = translator("nl"), translator("en")
    assert duration(45, dutch) == "45 min"
    assert duration(-125, dutch) == "2 u 05 min"
    assert duration(1439, dutch) == "23 u 59 min"
    assert duration(1723, dutch) == "1 d 4 u"
    assert duration(125, english) == "2 h 05 min"


def test_each_consoles_way_back_on_the_shared_error_page_has_english() -> None:
    from shared.console import HOME_LINKS, SERVICE_NAMES

    assert HOME_LINKS.keys() == SERVICE_NAMES.keys()
    assert sorted(set(HOME_LINKS.values()) - ENGLISH.keys()) == []
