"""Input files -> `Document`s: secure streaming XML (`xml_safety`), format detection (`formats`),
PubMed (`pubmed`) and JATS (`jats`) parsers, and XML -> text rendering (`xml_text`)."""
