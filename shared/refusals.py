"""A rule's refusal that a console can say in its own words: `kind` names the rule for code, `values` hold what the
message quotes, and str() stays the text the API and the logs have always given.

A console maps the kind to a Dutch message with {placeholders} (English in shared/i18n.py) and fills in the values
with `words`; it never has to recognise the service's English text.
"""

from __future__ import annotations

from collections.abc import Callable


class Refused(ValueError):
    """A refusal by a named rule. `text`: the message for APIs and logs (as before); `kind`: a short code such as
    "from-after-to"; `values`: the strings the console's message quotes by name."""

    def __init__(self, kind: str, text: str, **values: str) -> None:
        super().__init__(text)
        self.kind = kind
        self.values = values


def words(message: str, values: dict[str, str], translate: Callable[[str], str]) -> str:
    """`message` (Dutch, with {name} placeholders) in the language of `translate`, its placeholders filled from
    `values`; a placeholder without a value stays as it is (str.format would raise)."""
    text = translate(message)
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", value)
    return text
