"""Unicode/whitespace normalisation: one test per rule, with the exact expected strings."""

from __future__ import annotations

import pytest

from common.config import ConfigError
from data_prep.document import Document
from data_prep.text.clean import CleanConfig, clean_document, fix_mojibake, normalize_text
from tests.data_prep.conftest import prep_config


def test_micro_sign_and_greek_mu_become_one_character():
    assert normalize_text("5 \u00b5g and 5 \u03bcg") == "5 \u03bcg and 5 \u03bcg"
    assert "\u00b5" not in normalize_text("\u00b5M \u00b5m \u00b5L")


@pytest.mark.parametrize("s", [
    "10 ± 2", "p ≤ 0.05", "age ≥ 65", "3 × 10", "37 °C", "5 ‰", "5′-UTR", "3″",
    "α-helix, β-blocker, γ-GT, κB, Δ, Ω",
    "½ dose", "ellipsis …", "m² and cm³",
])
def test_scientific_symbols_are_kept(s):
    assert normalize_text(s) == s


def test_nfc_composes_but_nfkc_is_not_applied():
    assert normalize_text("Cafe\u0301") == "Caf\u00e9"  # combining acute -> precomposed é
    assert normalize_text("\u2126") == "\u03a9"  # OHM SIGN -> Greek Omega (canonical)
    assert normalize_text("10\u2076 cells") == "10\u2076 cells"  # NFKC would give "106 cells"


def test_degree_celsius_ligatures_and_fullwidth():
    assert normalize_text("37 \u2103 and 98 \u2109") == "37 °C and 98 °F"
    assert normalize_text("\ufb01brosis \ufb02ow") == "fibrosis flow"
    assert normalize_text("\uff21\uff22\uff23\uff11") == "ABC1"


def test_subscripts_become_ascii_by_default():
    assert normalize_text("H₂O, CO₂, Cₘₐₓ, t₁/₂") == "H2O, CO2, Cmax, t1/2"
    assert normalize_text("H₂O", CleanConfig(subscripts="keep")) == "H₂O"


def test_superscripts_kept_or_caret():
    assert normalize_text("m² and 10⁻³ M") == "m² and 10⁻³ M"
    caret = CleanConfig(superscripts="caret")
    assert normalize_text("3×10⁶ cells m² s⁻¹", caret) == "3×10^6 cells m^2 s^-1"


def test_unicode_spaces_become_plain_spaces():
    s = "a\u00a0b\u2009c\u202fd\u2002e\u3000f\u205fg\th"
    assert normalize_text(s) == "a b c d e f g h"
    assert normalize_text("5\u2009mg/kg") == "5 mg/kg"


def test_zero_width_soft_hyphen_bom_and_invisible_operators_removed():
    assert normalize_text("\ufeffgluco\u00adcorticoid") == "glucocorticoid"
    assert normalize_text("anti\u200bbody\u200c\u200d\u2060") == "antibody"
    assert normalize_text("f\u2061(x) = 2\u2062x") == "f(x) = 2x"


def test_control_characters_removed_and_c1_read_as_cp1252():
    assert normalize_text("a\x00b\x07c\x1bd\x7fe") == "abcde"
    # "\x96" is the Windows-1252 en dash seen through Latin-1; en dashes become "-"
    assert normalize_text("10\x9620 mg") == "10-20 mg"
    assert normalize_text("\x93quoted\x94") == '"quoted"'
    assert normalize_text("a\x81b") == "ab"  # undefined in cp1252: dropped


def test_dashes_and_quotes():
    assert normalize_text("10–20 mg, −5 °C, non‐small, figure‒dash") == "10-20 mg, -5 °C, non-small, figure-dash"
    assert normalize_text("a — b") == "a — b"  # em dash is punctuation, kept
    assert normalize_text("‘single’ “double”") == "'single' \"double\""
    keep = CleanConfig(dashes="keep", quotes="keep")
    assert normalize_text("10–20 “x”", keep) == "10–20 “x”"


def test_mojibake_repaired_only_when_it_is_valid_utf8():
    assert fix_mojibake("5 Âµg") == "5 µg"
    assert normalize_text("5 Âµg, CafÃ©, itâ€™s, Î¼M, â‰¥ 2") == "5 μg, Café, it's, μM, ≥ 2"
    assert normalize_text("it\u00e2\u0080\u0099s") == "it's"  # the Latin-1 reading (raw C1 bytes)
    for legit in ("São Paulo, ação", "É± rare pair", "Ã alone", "ç°C"):
        assert normalize_text(legit) == legit
    assert normalize_text("CafÃ©", CleanConfig(fix_mojibake=False)) == "CafÃ©"


def test_whitespace_collapses_inside_paragraphs_and_breaks_are_kept():
    s = "  Title  here \n\n\n Para one\nline two\t end.\r\n\r\nPara   two. \n \n\n"
    assert normalize_text(s) == "Title here\n\nPara one line two end.\n\nPara two."
    assert normalize_text("one\u2029two\u2028three") == "one\n\ntwo three"
    assert normalize_text("a\r\nb\rc") == "a b c"  # line breaks, not paragraph breaks
    assert normalize_text("") == ""
    assert normalize_text(" \n\n ") == ""


def test_ascii_fast_path_matches_general_path():
    s = "Plain ASCII\twith  tabs\x0b and\n\nparagraphs\x01."
    assert normalize_text(s) == "Plain ASCII with tabs and\n\nparagraphs."
    assert normalize_text(s + " é")[:-2] == normalize_text(s)


def test_clean_document_cleans_title_abstract_and_text():
    doc = Document(id="pmid:1", text="T\u00a0itle\n\nH₂O 5 µg", source="pubmed", title="T\u00a0itle",
                   abstract="H₂O  5 µg")
    out = clean_document(doc, CleanConfig())
    assert out is doc
    assert (doc.title, doc.abstract, doc.text) == ("T itle", "H2O 5 μg", "T itle\n\nH2O 5 μg")
    off = Document(id="pmid:2", text="H₂O", source="pubmed")
    assert clean_document(off, CleanConfig(enabled=False)).text == "H₂O"


def test_clean_config_from_mapping():
    assert prep_config().clean == CleanConfig()
    assert prep_config(clean={"superscripts": "caret"}).clean.superscripts == "caret"
    with pytest.raises(ConfigError, match=r"clean\.superscript") as e:
        prep_config(clean={"superscript": "caret"})
    assert e.value.key == "clean.superscript"
    with pytest.raises(ConfigError) as e:
        prep_config(clean={"dashes": "unicode"})
    assert e.value.key == "clean.dashes"
    with pytest.raises(ConfigError) as e:  # ("yes" is true to OmegaConf, as in YAML 1.1)
        prep_config(clean={"fix_mojibake": "maybe"})
    assert e.value.key == "clean.fix_mojibake"
