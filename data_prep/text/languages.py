"""Language codes as PubMed writes them (ISO 639-2/B, e.g. "eng", "fre", "ger").

PubMed's `<Language>` is already ISO 639-2/B; JATS `xml:lang` and py3langid give ISO 639-1
("en", "pt-BR"), mapped here so every `Document.language` and every `filter.keep_languages` entry
is compared in one code system. Norwegian: PubMed has only "nor" (no "nob"/"nno"), so Bokmål
("nb") and Nynorsk ("nn") map to "nor" too, and a JATS article tagged "nb" matches a PubMed record
in Norwegian.
"""

from __future__ import annotations

# ISO 639-1 -> ISO 639-2/B (the bibliographic codes: "fre", "ger", "chi", not "fra", "deu", "zho").
ISO639_1_TO_2B = {
    "af": "afr", "am": "amh", "ar": "ara", "as": "asm", "az": "aze", "be": "bel", "bg": "bul",
    "bn": "ben", "br": "bre", "bs": "bos", "ca": "cat", "cs": "cze", "cy": "wel", "da": "dan",
    "de": "ger", "el": "gre", "en": "eng", "eo": "epo", "es": "spa", "et": "est", "eu": "baq",
    "fa": "per", "fi": "fin", "fr": "fre", "fy": "fry", "ga": "gle", "gd": "gla", "gl": "glg",
    "gu": "guj", "ha": "hau", "he": "heb", "hi": "hin", "hr": "hrv", "ht": "hat", "hu": "hun",
    "hy": "arm", "id": "ind", "ig": "ibo", "is": "ice", "it": "ita", "ja": "jpn", "jv": "jav",
    "ka": "geo", "kk": "kaz", "km": "khm", "kn": "kan", "ko": "kor", "ku": "kur", "ky": "kir",
    "la": "lat", "lb": "ltz", "lg": "lug", "ln": "lin", "lo": "lao", "lt": "lit", "lv": "lav",
    "mg": "mlg", "mk": "mac", "ml": "mal", "mn": "mon", "mr": "mar", "ms": "may", "mt": "mlt",
    "my": "bur", "nb": "nor", "ne": "nep", "nl": "dut", "nn": "nor", "no": "nor", "oc": "oci",
    "om": "orm", "or": "ori", "pa": "pan", "pl": "pol", "ps": "pus", "pt": "por", "qu": "que",
    "ro": "rum", "ru": "rus", "rw": "kin", "sa": "san", "se": "sme", "si": "sin", "sk": "slo",
    "sl": "slv", "sn": "sna", "so": "som", "sq": "alb", "sr": "srp", "st": "sot", "sv": "swe",
    "sw": "swa", "ta": "tam", "te": "tel", "tg": "tgk", "th": "tha", "tk": "tuk", "tl": "tgl",
    "tr": "tur", "tt": "tat", "ug": "uig", "uk": "ukr", "ur": "urd", "uz": "uzb", "vi": "vie",
    "xh": "xho", "yo": "yor", "zh": "chi", "zu": "zul",
}


def normalize_language(code: str) -> str:
    """"EN", "en-US", "en_GB", "eng" -> "eng"; a code not in the table is returned lowercased."""
    c = code.strip().lower().replace("_", "-").split("-", 1)[0]
    return ISO639_1_TO_2B.get(c, c)
