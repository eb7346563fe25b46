"""Reading the language of a message, and a person asking for another one."""

from __future__ import annotations

import pytest

from bot.languages import LanguageRequest, Languages


@pytest.fixture(scope="module")
def languages() -> Languages:
    return Languages.load()


@pytest.mark.parametrize(("text", "code"), [
    ("hello, i need help please my boss took my passport", "en"),
    ("hola necesito ayuda, mi jefe tiene mi pasaporte", "es"),
    ("bonjour j'ai besoin d'aide, mon patron a pris mon passeport", "fr"),
    ("olá preciso de ajuda, o meu patrão ficou com o meu passaporte", "pt"),
    ("مرحبا احتاج مساعدة صاحب العمل اخذ جواز سفري", "ar"),
    ("здравствуйте мне нужна помощь, хозяин забрал мой паспорт", "ru"),
    ("добрий день, мені потрібна допомога, роботодавець забрав мій паспорт", "uk"),
    ("buna ziua am nevoie de ajutor, seful mi-a luat pasaportul", "ro"),
    ("你好我需要帮助老板拿走了我的护照", "zh"),
    ("xin chào tôi cần giúp đỡ, ông chủ giữ hộ chiếu của tôi", "vi"),
    ("สวัสดีค่ะ ฉันต้องการความช่วยเหลือ นายจ้างยึดพาสปอร์ตของฉัน", "th"),
    ("kailangan ko po ng tulong, kinuha ng amo ko ang passport ko", "tl"),
])
def test_a_sentence_in_each_language_is_read_surely(languages: Languages, text: str, code: str) -> None:
    reading = languages.detect(text)
    assert reading is not None and reading.code == code and reading.confident


def test_a_channel_hint_decides_a_word_that_fits_several_languages(languages: Languages) -> None:
    assert languages.detect("ok", {"language_code": "es"}).code == "es"  # type: ignore[union-attr]
    assert languages.detect("ok", {"country": "PH"}).code == "tl"  # type: ignore[union-attr]


def test_a_hint_never_outvotes_what_was_written(languages: Languages) -> None:
    reading = languages.detect("мне нужна помощь прямо сейчас", {"browser_lang": "en-us"})
    assert reading is not None and reading.code == "ru"


def test_hints_are_read_from_every_channel(languages: Languages) -> None:
    assert languages.from_hints({"browser_lang": "pt-br"}) == "pt"
    assert languages.from_hints({"language_code": "fil"}) == "tl"
    assert languages.from_hints({"country": "MD"}) == "ro"
    assert languages.from_hints({"browser_lang": "de-de"}) is None


def test_no_letters_no_reading(languages: Languages) -> None:
    assert languages.detect("?? !!") is None


@pytest.mark.parametrize(("text", "code"), [
    ("español", "es"),
    ("Español!", "es"),
    ("in English please", "en"),
    ("en español por favor", "es"),
    ("العربية", "ar"),
    ("中文", "zh"),
    ("tiếng việt", "vi"),
    ("ภาษาไทย", "th"),
    ("tagalog", "tl"),
    ("/lang uk", "uk"),
])
def test_naming_a_language_switches_to_it(languages: Languages, text: str, code: str) -> None:
    assert languages.request(text) == LanguageRequest(code)


@pytest.mark.parametrize("text", ["language", "Idioma", "язык", "/language", "no hablo inglés", "/lang xx"])
def test_asking_about_languages_offers_the_menu(languages: Languages, text: str) -> None:
    assert languages.request(text) == LanguageRequest(None)


@pytest.mark.parametrize("text", [
    "hello", "i need help",
    "my boss speaks only english and shouts at me every day when we are at the farm",
])
def test_other_messages_are_not_requests(languages: Languages, text: str) -> None:
    assert languages.request(text) is None
