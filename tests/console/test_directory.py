"""The responders' data files: canned responses in every language, the partner directory."""

from __future__ import annotations

from bot.languages import Languages
from bot.response_lint import never_say
from console.directory import Directory

LANGUAGES = Languages.load().codes


def test_every_language_has_every_canned_response_with_a_gloss() -> None:
    directory = Directory.load()
    assert set(directory.canned) == set(LANGUAGES)
    english = [c.id for c in directory.canned["en"]]
    phrases = never_say()
    for code, responses in directory.canned.items():
        assert [c.id for c in responses] == english, code
        for canned in responses:
            assert canned.text.strip() and canned.gloss.strip(), (code, canned.id)
            assert "<" not in canned.text and "{" not in canned.text, (code, canned.id)
            said = [p for p in phrases[code] if p in canned.text.casefold()]
            assert not said, (code, canned.id, said)
        assert directory.closing(code) == next(c.text for c in responses if c.id == "closing")


def test_partners_name_their_services_regions_languages_and_populations() -> None:
    partners = Directory.load().partners
    assert partners
    for partner in partners.values():
        assert partner.name and partner.services and partner.regions and partner.populations
        assert set(partner.languages) <= set(LANGUAGES), partner.id
