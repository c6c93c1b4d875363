"""Word lists and sentence templates for the generated demo corpus (`demo_corpus/corpus.py`).

The demo corpus must teach a tiny model something in a few CPU minutes, so its text has real
structure: every abstract is written from one `Study` (a drug, its target, a disease, an outcome
and the effect found), its sentences follow a few consistent templates per study design, and the
facts are consistent across the corpus (a drug always has the same class, target and indications).
Names are real biomedical vocabulary (drugs, genes, cell lines, diseases, units); the studies,
numbers, journals, people and identifiers are invented.

Sentences are returned as XML *fragments* in PubMed's inline markup (`<i>`, `<sup>`, `<sub>`,
MathML); `jats_markup` converts them to JATS tags and `fragment_text` to plain text.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

from lxml import etree

MATHML_NS = "http://www.w3.org/1998/Math/MathML"

# --------------------------------------------------------------------------------------------
# Drugs: (name, class, target, areas it is studied in). The class/target/indication triples stay
# fixed across the corpus, so "gefitinib ... EGFR ... lung cancer" is a learnable co-occurrence.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Drug:
    name: str
    drug_class: str
    target: str
    diseases: tuple[str, ...]


def _drugs(cls: str, target: str, diseases: tuple[str, ...], *names: str) -> list[Drug]:
    return [Drug(n, cls, target, diseases) for n in names]


_LUNG = ("non-small cell lung cancer",)
DRUGS: tuple[Drug, ...] = tuple(
    _drugs("EGFR tyrosine kinase inhibitor", "EGFR", _LUNG + ("pancreatic cancer",), "gefitinib", "erlotinib", "afatinib")
    + _drugs("third-generation EGFR inhibitor", "EGFR T790M", _LUNG, "osimertinib")
    + _drugs("BCR-ABL tyrosine kinase inhibitor", "BCR-ABL", ("chronic myeloid leukaemia",), "imatinib", "dasatinib", "nilotinib")
    + _drugs("HER2 tyrosine kinase inhibitor", "HER2", ("breast cancer",), "lapatinib", "neratinib")
    + _drugs("multikinase inhibitor", "VEGFR-2", ("hepatocellular carcinoma", "renal cell carcinoma"), "sorafenib", "sunitinib")
    + _drugs("ALK inhibitor", "ALK", _LUNG, "crizotinib", "alectinib")
    + _drugs("JAK inhibitor", "JAK1/2", ("rheumatoid arthritis", "myelofibrosis"), "ruxolitinib", "tofacitinib", "baricitinib")
    + _drugs("BTK inhibitor", "BTK", ("chronic lymphocytic leukaemia",), "ibrutinib")
    + _drugs("anti-HER2 monoclonal antibody", "HER2", ("breast cancer", "gastric cancer"), "trastuzumab", "pertuzumab")
    + _drugs("anti-VEGF monoclonal antibody", "VEGF-A", ("colorectal cancer",), "bevacizumab")
    + _drugs("anti-EGFR monoclonal antibody", "EGFR", ("colorectal cancer",), "cetuximab", "panitumumab")
    + _drugs("anti-PD-1 monoclonal antibody", "PD-1", ("melanoma",) + _LUNG, "pembrolizumab", "nivolumab")
    + _drugs("anti-TNF-α monoclonal antibody", "TNF-α", ("rheumatoid arthritis", "Crohn's disease", "ulcerative colitis"), "adalimumab", "infliximab", "golimumab")
    + _drugs("anti-IL-6 receptor antibody", "IL-6R", ("rheumatoid arthritis",), "tocilizumab", "sarilumab")
    + _drugs("anti-RANKL antibody", "RANKL", ("osteoporosis",), "denosumab")
    + _drugs("anti-IgE antibody", "IgE", ("asthma",), "omalizumab")
    + _drugs("triazole antifungal", "CYP51", ("invasive candidiasis", "invasive aspergillosis"), "fluconazole", "voriconazole", "posaconazole", "isavuconazole", "itraconazole")
    + _drugs("proton pump inhibitor", "H+/K+-ATPase", ("gastro-oesophageal reflux disease",), "omeprazole", "esomeprazole", "pantoprazole")
    + _drugs("ACE inhibitor", "ACE", ("hypertension", "heart failure"), "captopril", "enalapril", "lisinopril", "ramipril", "perindopril")
    + _drugs("angiotensin II receptor blocker", "AT1 receptor", ("hypertension",), "losartan", "valsartan", "telmisartan")
    + _drugs("statin", "HMG-CoA reductase", ("hypercholesterolaemia", "coronary artery disease"), "atorvastatin", "simvastatin", "rosuvastatin", "pravastatin")
    + _drugs("SGLT2 inhibitor", "SGLT2", ("type 2 diabetes mellitus", "heart failure"), "empagliflozin", "dapagliflozin", "canagliflozin")
    + _drugs("DPP-4 inhibitor", "DPP-4", ("type 2 diabetes mellitus",), "sitagliptin", "linagliptin")
    + _drugs("biguanide", "AMPK", ("type 2 diabetes mellitus", "polycystic ovary syndrome"), "metformin")
    + _drugs("platinum compound", "DNA", ("ovarian cancer",) + _LUNG, "cisplatin", "carboplatin")
    + _drugs("taxane", "β-tubulin", ("breast cancer", "ovarian cancer"), "paclitaxel", "docetaxel")
    + _drugs("anthracycline", "topoisomerase II", ("breast cancer",), "doxorubicin")
    + _drugs("natural polyphenol", "NF-κB", ("ulcerative colitis", "Alzheimer's disease", "non-alcoholic fatty liver disease"), "curcumin", "resveratrol", "quercetin")
    + _drugs("isoquinoline alkaloid", "AMPK", ("non-alcoholic fatty liver disease", "type 2 diabetes mellitus"), "berberine")
    + _drugs("cholinesterase inhibitor", "acetylcholinesterase", ("Alzheimer's disease",), "donepezil", "rivastigmine")
    + _drugs("dopamine agonist", "D2 receptor", ("Parkinson's disease",), "pramipexole", "ropinirole")
    + _drugs("antiepileptic drug", "SV2A", ("epilepsy",), "levetiracetam", "brivaracetam")
)

# Therapeutic area of each disease: decides which outcomes, models and populations fit a study.
DISEASE_AREA: dict[str, str] = {
    "non-small cell lung cancer": "oncology", "pancreatic cancer": "oncology", "breast cancer": "oncology",
    "chronic myeloid leukaemia": "oncology", "hepatocellular carcinoma": "oncology",
    "renal cell carcinoma": "oncology", "chronic lymphocytic leukaemia": "oncology",
    "gastric cancer": "oncology", "colorectal cancer": "oncology", "melanoma": "oncology",
    "ovarian cancer": "oncology", "myelofibrosis": "oncology",
    "rheumatoid arthritis": "inflammation", "Crohn's disease": "inflammation", "ulcerative colitis": "inflammation",
    "asthma": "inflammation", "gastro-oesophageal reflux disease": "inflammation",
    "osteoporosis": "bone",
    "invasive candidiasis": "infection", "invasive aspergillosis": "infection",
    "hypertension": "cardiovascular", "heart failure": "cardiovascular", "coronary artery disease": "cardiovascular",
    "hypercholesterolaemia": "metabolic", "type 2 diabetes mellitus": "metabolic",
    "polycystic ovary syndrome": "metabolic", "non-alcoholic fatty liver disease": "metabolic",
    "Alzheimer's disease": "neuro", "Parkinson's disease": "neuro", "epilepsy": "neuro",
}


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    direction: str  # "reduce" | "increase": what the treatment is hoped to do
    unit: str  # appended after the numbers ("" for a score)
    lo: float  # typical control-group value range
    hi: float


def _o(name: str, direction: str, unit: str, lo: float, hi: float) -> Outcome:
    return Outcome(name, direction, unit, lo, hi)


# Outcomes by (area, design). Cohort studies report hazard ratios, so their outcomes are events.
OUTCOMES: dict[tuple[str, str], tuple[Outcome, ...]] = {
    ("oncology", "cell"): (_o("cell viability", "reduce", "%", 70, 98), _o("colony formation", "reduce", "colonies per well", 80, 240),
                           _o("apoptosis rate", "increase", "%", 4, 15), _o("cell migration", "reduce", "% wound closure", 40, 85)),
    ("oncology", "animal"): (_o("tumour volume", "reduce", "mm³", 600, 1800), _o("tumour weight", "reduce", "g", 0.8, 2.4)),
    ("oncology", "rct"): (_o("progression-free survival", "increase", "months", 4, 11), _o("objective response rate", "increase", "%", 15, 40)),
    ("oncology", "cohort"): (_o("all-cause mortality", "reduce", "", 0, 0), _o("disease recurrence", "reduce", "", 0, 0)),
    ("metabolic", "cell"): (_o("glucose uptake", "increase", "nmol/mg protein", 8, 25), _o("lipid accumulation", "reduce", "% of control", 70, 100)),
    ("metabolic", "animal"): (_o("fasting blood glucose", "reduce", "mmol/L", 12, 28), _o("serum triglycerides", "reduce", "mmol/L", 1.2, 3.5)),
    ("metabolic", "rct"): (_o("HbA1c", "reduce", "%", 7.2, 9.1), _o("LDL cholesterol", "reduce", "mmol/L", 3.1, 4.9), _o("body weight", "reduce", "kg", 78, 104)),
    ("metabolic", "cohort"): (_o("major adverse cardiovascular events", "reduce", "", 0, 0), _o("hospitalisation", "reduce", "", 0, 0)),
    ("cardiovascular", "cell"): (_o("cardiomyocyte apoptosis", "reduce", "%", 12, 35), _o("intracellular ROS", "reduce", "% of control", 150, 260)),
    ("cardiovascular", "animal"): (_o("systolic blood pressure", "reduce", "mmHg", 165, 205), _o("infarct size", "reduce", "%", 30, 55)),
    ("cardiovascular", "rct"): (_o("systolic blood pressure", "reduce", "mmHg", 145, 168), _o("left ventricular ejection fraction", "increase", "%", 28, 40),
                                _o("6-minute walk distance", "increase", "m", 280, 410)),
    ("cardiovascular", "cohort"): (_o("hospitalisation for heart failure", "reduce", "", 0, 0), _o("all-cause mortality", "reduce", "", 0, 0)),
    ("inflammation", "cell"): (_o("IL-6 secretion", "reduce", "pg/mL", 300, 900), _o("TNF-α release", "reduce", "pg/mL", 400, 1200),
                               _o("nitric oxide production", "reduce", "µM", 18, 45)),
    ("inflammation", "animal"): (_o("arthritis score", "reduce", "", 8, 14), _o("colon length", "increase", "cm", 5.1, 6.8)),
    ("inflammation", "rct"): (_o("DAS28 score", "reduce", "", 4.8, 6.2), _o("FEV1", "increase", "L", 1.9, 2.8), _o("symptom score", "reduce", "", 6, 14)),
    ("inflammation", "cohort"): (_o("serious infection", "reduce", "", 0, 0), _o("hospitalisation", "reduce", "", 0, 0)),
    ("bone", "cell"): (_o("osteoclast formation", "reduce", "TRAP+ cells per well", 90, 220),),
    ("bone", "animal"): (_o("bone mineral density", "increase", "g/cm²", 0.11, 0.19),),
    ("bone", "rct"): (_o("lumbar spine bone mineral density", "increase", "g/cm²", 0.78, 0.95),),
    ("bone", "cohort"): (_o("hip fracture", "reduce", "", 0, 0),),
    ("infection", "cell"): (_o("fungal growth", "reduce", "% of control", 85, 100), _o("biofilm formation", "reduce", "OD570", 1.1, 2.4)),
    ("infection", "animal"): (_o("kidney fungal burden", "reduce", "log10 CFU/g", 5.1, 7.3),),
    ("infection", "rct"): (_o("clinical cure rate", "increase", "%", 45, 70),),
    ("infection", "cohort"): (_o("90-day mortality", "reduce", "", 0, 0),),
    ("neuro", "cell"): (_o("neuronal viability", "increase", "%", 45, 70), _o("intracellular ROS", "reduce", "% of control", 160, 280)),
    ("neuro", "animal"): (_o("escape latency", "reduce", "s", 35, 60), _o("infarct volume", "reduce", "mm³", 120, 260)),
    ("neuro", "rct"): (_o("MMSE score", "increase", "points", 16, 23), _o("seizure frequency", "reduce", "seizures per month", 6, 14)),
    ("neuro", "cohort"): (_o("incident dementia", "reduce", "", 0, 0),),
}

CELL_LINES: dict[str, tuple[str, ...]] = {
    "oncology": ("A549", "H1975", "MCF-7", "MDA-MB-231", "HCT116", "HepG2", "PANC-1", "K562", "SK-OV-3", "HeLa"),
    "metabolic": ("HepG2", "3T3-L1 adipocytes", "C2C12 myotubes"),
    "cardiovascular": ("H9c2", "HUVEC"),
    "inflammation": ("RAW 264.7", "THP-1", "Caco-2"),
    "bone": ("RAW 264.7", "MC3T3-E1"),
    "infection": ("<i>Candida albicans</i> SC5314", "<i>Aspergillus fumigatus</i> Af293"),
    "neuro": ("SH-SY5Y", "PC12", "HT22"),
}
ONCOLOGY_CELLS: dict[str, tuple[str, ...]] = {
    "non-small cell lung cancer": ("A549", "H1975", "PC-9"), "breast cancer": ("MCF-7", "MDA-MB-231", "SK-BR-3"),
    "colorectal cancer": ("HCT116", "SW480"), "hepatocellular carcinoma": ("HepG2", "Huh7"), "pancreatic cancer": ("PANC-1",),
    "chronic myeloid leukaemia": ("K562",), "ovarian cancer": ("SK-OV-3", "A2780"), "gastric cancer": ("AGS", "MKN45"),
    "melanoma": ("A375", "B16F10"), "renal cell carcinoma": ("786-O",), "chronic lymphocytic leukaemia": ("MEC-1",),
    "myelofibrosis": ("HEL",),
}
CELL_STRESS: dict[str, str] = {
    "oncology": "", "metabolic": "cultured under high-glucose conditions", "cardiovascular": "exposed to hypoxia/reoxygenation",
    "inflammation": "stimulated with lipopolysaccharide (LPS, 1 µg/mL)", "bone": "stimulated with RANKL (50 ng/mL)",
    "infection": "", "neuro": "exposed to H<sub>2</sub>O<sub>2</sub> (200 µM)",
}
# Animal models by outcome (an outcome is only measured in a model where it makes sense).
ANIMAL_MODELS: dict[str, tuple[str, ...]] = {
    "tumour volume": ("BALB/c nude mice bearing {cell} xenografts", "NOD/SCID mice bearing {cell} xenografts"),
    "tumour weight": ("BALB/c nude mice bearing {cell} xenografts",),
    "fasting blood glucose": ("db/db mice", "Zucker diabetic fatty rats"),
    "serum triglycerides": ("high-fat diet-fed C57BL/6 mice",),
    "systolic blood pressure": ("spontaneously hypertensive rats",),
    "infarct size": ("Sprague-Dawley rats with myocardial infarction",),
    "arthritis score": ("DBA/1 mice with collagen-induced arthritis",),
    "colon length": ("C57BL/6 mice with DSS-induced colitis",),
    "escape latency": ("APP/PS1 transgenic mice",),
    "infarct volume": ("Wistar rats after middle cerebral artery occlusion",),
}
ANIMAL_MODELS_BY_AREA: dict[str, tuple[str, ...]] = {
    "oncology": ("BALB/c nude mice bearing {cell} xenografts", "NOD/SCID mice bearing {cell} xenografts"),
    "metabolic": ("db/db mice", "high-fat diet-fed C57BL/6 mice", "Zucker diabetic fatty rats"),
    "cardiovascular": ("spontaneously hypertensive rats", "Sprague-Dawley rats with myocardial infarction"),
    "inflammation": ("DBA/1 mice with collagen-induced arthritis", "C57BL/6 mice with DSS-induced colitis"),
    "bone": ("ovariectomised Sprague-Dawley rats", "ovariectomised C57BL/6 mice"),
    "infection": ("neutropenic BALB/c mice with disseminated candidiasis", "immunosuppressed CD-1 mice"),
    "neuro": ("APP/PS1 transgenic mice", "Wistar rats after middle cerebral artery occlusion"),
}
ROUTES = ("orally", "by oral gavage", "intraperitoneally", "i.p.", "subcutaneously")
COMPARATORS = ("placebo", "vehicle", "standard care", "the control group")
COUNTRIES = ("China", "Japan", "Germany", "France", "Spain", "Italy", "United States", "Canada", "Brazil",
             "India", "Korea", "United Kingdom", "Netherlands", "Sweden", "Australia", "Iran", "Turkey", "Egypt")

GENES = ("EGFR", "BRCA1", "BRCA2", "TP53", "KRAS", "PTEN", "MYC", "BCL-2", "VEGF", "IL-6", "IL-1β", "TNF-α",
         "NF-κB", "STAT3", "AKT", "mTOR", "PI3K", "ERK1/2", "JAK2", "PD-L1", "COX-2", "iNOS", "caspase-3",
         "Nrf2", "HIF-1α", "TGF-β1", "SIRT1", "AMPK", "p21", "CDK4/6", "PPAR-γ", "MMP-9", "E-cadherin")
PATHWAYS = ("PI3K/AKT/mTOR", "MAPK/ERK", "JAK2/STAT3", "NF-κB", "Nrf2/HO-1", "AMPK/SIRT1", "TGF-β1/Smad3",
            "Wnt/β-catenin", "Keap1/Nrf2")
VARIANTS = ("rs1042522", "rs1800629", "rs2228570", "rs1801133", "rs4880", "rs1136410", "rs2070744",
            "rs1800795", "rs25487", "rs1799983", "rs7903146", "rs9939609")
VARIANT_GENES = ("TP53", "TNF", "VDR", "MTHFR", "SOD2", "PARP1", "NOS3", "IL6", "XRCC1", "TCF7L2", "FTO", "ACE")

# Long systematic-style names: "2-(4-chlorophenyl)-N-methylacetamide", ...
_SUBST = ("chloro", "fluoro", "bromo", "methoxy", "hydroxy", "methyl", "nitro", "trifluoromethyl", "amino", "cyano")
_ALKYL = ("methyl", "ethyl", "propyl", "isopropyl", "cyclopropyl", "benzyl")


def iupac_name(rng: random.Random) -> str:
    p, q = rng.choice((2, 3, 4)), rng.choice((2, 3, 4, 5))
    a, b = rng.choice(_SUBST), rng.choice(_SUBST)
    patterns = (
        f"{p}-({q}-{a}phenyl)-N-{rng.choice(_ALKYL)}acetamide",
        f"N-({q}-{a}phenyl)-{p}-{b}benzamide",
        f"(E)-3-({q}-{a}phenyl)-1-({p}-{b}phenyl)prop-2-en-1-one",
        f"{p},{q + 1}-di{a}pyrimidine-5-carboxylic acid",
        f"1-[{q}-({b}methyl)phenyl]-4-{rng.choice(_ALKYL)}piperazine",
        f"{p}-amino-N-({q}-{a}benzyl)-1,3-thiazole-5-carboxamide",
        f"N'-[({p}-{a}phenyl)methylidene]-{q}-{b}benzohydrazide",
    )
    return rng.choice(patterns)


def compound_drug(rng: random.Random, area: str) -> Drug:
    """An invented small molecule (with a code and a systematic name) for cell/animal studies."""
    code = f"{rng.choice(('DMX', 'BGT', 'CPD', 'HX', 'ZL'))}-{rng.randint(101, 9899)}"
    target = rng.choice(GENES)
    diseases = tuple(d for d, a in DISEASE_AREA.items() if a == area)
    return Drug(f"{code}, {iupac_name(rng)},", "small-molecule inhibitor", target, diseases)


def short_name(drug: Drug) -> str:
    """How a sentence refers to the drug after its first mention (the code of an invented compound)."""
    return drug.name.split(",")[0]


# --------------------------------------------------------------------------------------------
# A study: everything an abstract says, fixed before any sentence is written.
# --------------------------------------------------------------------------------------------
DESIGNS = ("cell", "animal", "rct", "cohort", "association", "review")
DESIGN_WEIGHTS = (0.22, 0.2, 0.24, 0.14, 0.1, 0.1)
# yes: significant in the hoped-for direction; none: no significant effect; opposite: significant
# the other way; mixed: inconsistent / borderline. PubMedQA answer: yes | no | no | maybe.
EFFECTS = ("yes", "none", "opposite", "mixed")
EFFECT_WEIGHTS = (0.4, 0.25, 0.1, 0.25)
ANSWER = {"yes": "yes", "none": "no", "opposite": "no", "mixed": "maybe"}


@dataclass(frozen=True, slots=True)
class Study:
    design: str
    drug: Drug
    disease: str
    area: str
    outcome: Outcome
    effect: str
    model: str  # cell line, animal model or patient population
    n: int  # patients / animals per group / replicates
    dose: str
    weeks: int
    control: float  # control-group value of the outcome
    treated: float
    sd: float
    p: str  # "p < 0.001", "p = 0.42", ...
    ratio: tuple[float, float, float]  # HR / OR with its 95% CI (cohort, association)
    ic50: float
    gene: str  # a second gene / pathway mentioned in the mechanism sentence
    pathway: str
    variant: tuple[str, str]  # (gene, rsID) for association studies
    year: int
    phrasing: int  # seeds the choice among equivalent templates (kept when a record is revised)
    markup: bool  # write some inline markup (<i>, <sub>, <sup>)
    mathml: bool  # write a MathML snippet

    @property
    def answer(self) -> str:
        return ANSWER[self.effect]

    @property
    def qa_eligible(self) -> bool:
        return self.design != "review"


def _fmt(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _p_value(rng: random.Random, significant: bool) -> str:
    if significant:
        return rng.choice(("p < 0.001", "p < 0.01", "p < 0.05", f"p = {rng.choice((0.001, 0.002, 0.004, 0.008))}",
                           f"p = {rng.randint(10, 39) / 1000:.3f}"))
    return f"p = {rng.randint(12, 91) / 100:.2f}"


def make_study(rng: random.Random, design: str | None = None) -> Study:
    design = design or rng.choices(DESIGNS, DESIGN_WEIGHTS)[0]
    effect = rng.choices(EFFECTS, EFFECT_WEIGHTS)[0]
    if design == "association" and effect == "opposite":
        effect = "none"  # "associated with a lower risk" would need its own question form
    drug = rng.choice(DRUGS)
    disease = rng.choice(drug.diseases)
    area = DISEASE_AREA[disease]
    if design in ("cell", "animal") and rng.random() < 0.3:
        drug = compound_drug(rng, area)
    odesign = design if design in ("cell", "animal", "rct", "cohort") else "rct"
    outcome = rng.choice(OUTCOMES[(area, odesign)])
    cell = rng.choice(ONCOLOGY_CELLS.get(disease) or CELL_LINES[area])
    if design == "cell":
        model = f"{cell} cells" if "<i>" not in cell else cell
        n = rng.choice((3, 3, 4, 5, 6))
    elif design == "animal":
        models = ANIMAL_MODELS.get(outcome.name, ANIMAL_MODELS_BY_AREA[area])
        model = rng.choice(models).format(cell=cell)
        n = rng.choice((6, 8, 10, 12, 15))
    else:
        model = f"patients with {disease}"
        n = rng.randint(6, 120) * 10 if design != "cohort" else rng.randint(80, 900) * 50
    control = rng.uniform(outcome.lo, outcome.hi) if outcome.hi else 0.0
    # Effect size: a clear change for yes/opposite, a small one for none, a middling one for mixed.
    size = {"yes": rng.uniform(0.25, 0.55), "none": rng.uniform(0.0, 0.06),
            "opposite": rng.uniform(0.15, 0.35), "mixed": rng.uniform(0.08, 0.18)}[effect]
    sign = -1 if outcome.direction == "reduce" else 1
    if effect == "opposite":
        sign = -sign
    treated = control * (1 + sign * size) if control else 0.0
    sig = effect in ("yes", "opposite")
    p = _p_value(rng, sig) if effect != "mixed" else f"p = {rng.choice((0.06, 0.07, 0.08, 0.09, 0.11))}"
    if design in ("cohort", "association"):
        if effect == "yes" and design == "cohort":
            hr = rng.uniform(0.55, 0.82)
        elif effect == "yes":
            hr = rng.uniform(1.3, 2.4)
        elif effect == "opposite":
            hr = rng.uniform(1.2, 1.6)
        elif effect == "mixed":
            hr = rng.uniform(0.85, 0.95) if design == "cohort" else rng.uniform(1.08, 1.2)
        else:
            hr = rng.uniform(0.95, 1.05)
        half = hr * rng.uniform(0.12, 0.2)
        lo, hi = hr - half, hr + half
        if effect == "mixed":  # the interval just crosses 1
            lo, hi = (min(lo, 0.97), max(hi, 1.03))
        if sig and lo < 1 < hi:
            lo, hi = (lo, 0.96) if hr < 1 else (1.04, hi)
        ratio = (round(hr, 2), round(lo, 2), round(hi, 2))
    else:
        ratio = (1.0, 1.0, 1.0)
    unit = rng.choice(("mg/kg", "mg/kg/day")) if design == "animal" else "mg"
    amount = rng.choice((1, 2.5, 5, 10, 20, 25, 40, 50, 100)) if design == "animal" else rng.choice((5, 10, 20, 40, 50, 100, 150, 200, 400))
    dose = f"{amount} {unit}" if design != "cell" else f"{rng.choice((0.1, 0.5, 1, 2, 5, 10, 20, 50))} µM"
    return Study(
        design=design, drug=drug, disease=disease, area=area, outcome=outcome, effect=effect, model=model, n=n,
        dose=dose, weeks=rng.choice((2, 4, 6, 8, 12, 24, 52)), control=control, treated=treated,
        sd=abs(control) * rng.uniform(0.05, 0.15), p=p, ratio=ratio, ic50=round(rng.uniform(0.05, 45), 1),
        gene=rng.choice(GENES), pathway=rng.choice(PATHWAYS),
        variant=(rng.choice(VARIANT_GENES), rng.choice(VARIANTS)), year=rng.randint(2012, 2025),
        phrasing=rng.getrandbits(32), markup=rng.random() < 0.35, mathml=rng.random() < 0.03,
    )


def corrected(study: Study, rng: random.Random) -> Study:
    """The study as an erratum-corrected record states it: a different sample size and value."""
    return replace(study, n=study.n + rng.choice((-2, -1, 1, 2, 4)) * (10 if study.n >= 60 else 1),
                   treated=study.treated * rng.choice((0.97, 0.98, 1.02, 1.03)))


# --------------------------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------------------------

def x(s: str) -> str:
    """Escape plain text for XML (the templates add markup around escaped text)."""
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;") if ("&" in s or "<" in s or ">" in s) else s


def cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def _past(direction: str) -> str:
    return {"reduce": "reduced", "increase": "increased"}[direction]


def _opposite(direction: str) -> str:
    return "increase" if direction == "reduce" else "reduce"


def _val(study: Study, v: float) -> str:
    unit = study.outcome.unit
    return f"{_fmt(v)} ± {_fmt(study.sd)}{'' if unit in ('', '%') else ' '}{x(unit)}"


def _drug(study: Study, first: bool = False) -> str:
    """The drug's name; on first mention an invented compound also gets its systematic name."""
    return x(study.drug.name if first else short_name(study.drug))


def ic50(study: Study, markup: bool) -> str:
    return "IC<sub>50</sub>" if markup else "IC50"


def title(study: Study, rng: random.Random) -> str:
    d, o, dis = _drug(study), x(study.outcome.name), x(study.disease)
    m = x(study.model) if "<i>" not in study.model else study.model
    t = {
        "cell": (f"{cap(d)} modulates {o} in {m} through the {x(study.pathway)} pathway",
                 f"Effects of {d} on {o} in {m}",
                 f"{cap(d)} targets {x(study.drug.target)} and alters {o} <i>in vitro</i>" if study.markup else
                 f"{cap(d)} targets {x(study.drug.target)} and alters {o} in vitro"),
        "animal": (f"{cap(d)} and {o} in {m}", f"Effect of {d} on {o} in {m}",
                   f"Oral {d} in an experimental model of {dis}: effects on {o}"),
        "rct": (f"Effect of {d} on {o} in {x(study.model)}: a randomised controlled trial",
                f"{cap(d)} versus {x(rng.choice(COMPARATORS[:1] + COMPARATORS[2:3]))} for {dis}: a multicentre randomised trial",
                f"Efficacy and safety of {d} in {dis}: results of a {study.weeks}-week randomised trial"),
        "cohort": (f"{cap(d)} use and {o} in {x(study.model)}: a nationwide cohort study",
                   f"Association between {d} exposure and {o} in {dis}: a retrospective cohort study"),
        "association": (f"The {x(study.variant[0])} {x(study.variant[1])} polymorphism and susceptibility to {dis}: a case-control study",
                        f"Association of {x(study.variant[0])} {x(study.variant[1])} with {dis} risk"),
        "review": (f"{cap(d)} in {dis}: current evidence and future directions",
                   f"Targeting {x(study.drug.target)} in {dis}: a review",
                   f"The role of {x(study.gene)} in {dis}: mechanisms and therapeutic implications"),
    }[study.design]
    return rng.choice(t) + "."


def _background(s: Study, rng: random.Random) -> list[str]:
    d0, dis, tgt = _drug(s, first=True), x(s.disease), x(s.drug.target)
    cls = x(s.drug.drug_class)
    first = rng.choice((
        f"{cap(dis)} remains a major cause of morbidity and mortality worldwide, and new treatment options are needed.",
        f"Effective treatment of {dis} remains an unmet clinical need.",
        f"{cap(x(s.gene))} signalling has been implicated in the pathogenesis of {dis}.",
    ))
    if s.design == "association":
        return [first, f"Genetic variants in {x(s.variant[0])} may modify susceptibility to {dis}, but previous results are inconsistent.",
                f"This study examined whether the {x(s.variant[0])} {x(s.variant[1])} polymorphism is associated with {dis} risk."]
    aim = rng.choice((f"This study investigated whether {d0} affects {x(s.outcome.name)} in {_model(s)}.",
                      f"We aimed to evaluate the effect of {d0} on {x(s.outcome.name)} in {_model(s)}.",
                      f"The aim of this study was to determine whether {d0} {x(s.outcome.direction)}s {x(s.outcome.name)} in {_model(s)}."))
    article = "an" if cls[:1].lower() in "aeiou" else "a"
    return [first, f"{cap(_drug(s))} is {article} {cls} that acts on {tgt}." if not s.drug.name.count(",") else
            f"{cap(_drug(s))} was identified as a putative {tgt} inhibitor in a screen of small molecules.", aim]


def _model(s: Study) -> str:
    return s.model if "<i>" in s.model else x(s.model)


def _methods(s: Study, rng: random.Random) -> list[str]:
    d, o, m = _drug(s), x(s.outcome.name), _model(s)
    if s.design == "cell":
        stress = CELL_STRESS[s.area]
        return [f"{cap(m)} {'were ' + stress + ' and ' if stress else 'were '}treated with {d} at concentrations up to {x(s.dose)} for 48 h.",
                rng.choice((f"{cap(o)} was measured in {s.n} independent experiments, and protein expression of {x(s.gene)} was analysed by western blotting.",
                            f"{cap(o)} was assessed in {s.n} independent experiments; {x(s.gene)} and {x(s.drug.target)} levels were determined by western blot and qRT-PCR."))]
    if s.design == "animal":
        return [f"{cap(m)} (n = {s.n} per group) received {d} ({x(s.dose)}, {rng.choice(ROUTES)}) or vehicle for {s.weeks} weeks.",
                f"{cap(o)} was measured at the end of treatment, and tissues were collected for histological and molecular analyses."]
    if s.design == "rct":
        comp = rng.choice(("placebo", "placebo", "standard care"))
        return [f"In this {rng.choice(('double-blind', 'open-label', 'multicentre, double-blind'))} trial, {s.n} {x(s.model)} aged ≥ 18 years were randomly assigned to {d} {x(s.dose)} {rng.choice(('once daily', 'twice daily'))} or {comp} for {s.weeks} weeks.",
                f"The primary end point was the change in {o} from baseline."]
    if s.design == "cohort":
        return [f"We conducted a retrospective cohort study of {s.n} {x(s.model)} identified from a national registry between {s.year - 10} and {s.year - 2}.",
                f"Hazard ratios (HRs) for {o} associated with {d} use were estimated with Cox proportional hazards models adjusted for age, sex and comorbidities."]
    if s.design == "association":
        cases = s.n
        return [f"A total of {cases} patients with {x(s.disease)} and {cases + rng.randint(-30, 60) * 5} healthy controls were genotyped for {x(s.variant[1])} by TaqMan assay.",
                "Odds ratios (ORs) with 95% confidence intervals (CIs) were calculated by logistic regression."]
    return []


def _stats_ci(s: Study) -> str:
    hr, lo, hi = s.ratio
    return f"{hr:.2f}, 95% CI {lo:.2f}–{hi:.2f}"


def main_result(s: Study, rng: random.Random) -> str:
    """The sentence that states the answer: the one a reader needs for the PubMedQA question."""
    d, o = _drug(s), x(s.outcome.name)
    direction = s.outcome.direction
    ctrl = "vehicle" if s.design in ("cell", "animal") else "placebo"
    vals = f"{_val(s, s.treated)} vs {_val(s, s.control)}"
    if s.design == "cohort":
        r = _stats_ci(s)
        return {
            "yes": f"{cap(d)} use was associated with a significantly lower risk of {o} (HR = {r}; {x(s.p)}).",
            "none": f"{cap(d)} use was not associated with the risk of {o} (HR = {r}; {x(s.p)}).",
            "opposite": f"{cap(d)} use was associated with a significantly higher risk of {o} (HR = {r}; {x(s.p)}).",
            "mixed": f"The association between {d} use and {o} was inconclusive (HR = {r}; {x(s.p)}), and the direction differed between sensitivity analyses.",
        }[s.effect]
    if s.design == "association":
        r = _stats_ci(s)
        g, v = x(s.variant[0]), x(s.variant[1])
        return {
            "yes": f"The {v} minor allele was significantly associated with an increased risk of {x(s.disease)} (OR = {r}; {x(s.p)}).",
            "none": f"No significant association was found between the {g} {v} polymorphism and {x(s.disease)} risk (OR = {r}; {x(s.p)}).",
            "mixed": f"The {v} minor allele was associated with {x(s.disease)} only in the recessive model, and the overall association was not consistent (OR = {r}; {x(s.p)}).",
        }[s.effect]
    if s.effect == "yes":
        return rng.choice((
            f"{cap(d)} significantly {_past(direction)} {o} compared with {ctrl} ({vals}; {x(s.p)}).",
            f"Compared with {ctrl}, {d} significantly {_past(direction)} {o} ({vals}; {x(s.p)}).",
        ))
    if s.effect == "none":
        return rng.choice((
            f"{cap(d)} had no significant effect on {o} compared with {ctrl} ({vals}; {x(s.p)}).",
            f"{cap(o)} did not differ significantly between the {d} and {ctrl} groups ({vals}; {x(s.p)}).",
        ))
    if s.effect == "opposite":
        return rng.choice((
            f"Unexpectedly, {d} significantly {_past(_opposite(direction))} {o} compared with {ctrl} ({vals}; {x(s.p)}).",
            f"Contrary to our hypothesis, {o} was significantly {'higher' if direction == 'reduce' else 'lower'} with {d} than with {ctrl} ({vals}; {x(s.p)}).",
        ))
    return rng.choice((  # mixed
        f"{cap(d)} showed a non-significant trend towards {'lower' if direction == 'reduce' else 'higher'} {o} ({vals}; {x(s.p)}), and results were inconsistent across dose groups.",
        f"The effect of {d} on {o} was mixed: it was {_past(direction)} at the highest dose but not at lower doses, and the overall comparison was inconclusive ({vals}; {x(s.p)}).",
    ))


def _results(s: Study, rng: random.Random) -> list[str]:
    out = [main_result(s, rng)]
    d = _drug(s)
    if s.design == "cell":
        i50 = ic50(s, s.markup)
        if s.mathml:
            kd = (f'<mml:math xmlns:mml="{MATHML_NS}"><mml:msub><mml:mi>K</mml:mi><mml:mi>d</mml:mi></mml:msub></mml:math>')
            out.append(f"{cap(d)} bound {x(s.drug.target)} with {kd} = {_fmt(s.ic50 * 0.4)} nM.")
        if s.outcome.direction == "increase":
            i50, label = i50.replace("IC", "EC"), "EC50"
        else:
            label = "IC50"
        out.append(f"The {i50} of {d} was {s.ic50} µM after 48 h" + (f" ({label} = {_fmt(s.ic50 * 0.7)} µM at 72 h)." if rng.random() < 0.3 else "."))
        out.append(f"{cap(d)} altered the expression of {x(s.gene)} and modulated the {x(s.pathway)} pathway.")
    elif s.design == "animal":
        out.append(rng.choice((f"No significant change in body weight was observed in {d}-treated animals.",
                               f"Histological analysis showed reduced {x(s.gene)} expression in tissues from {d}-treated animals.")))
        if s.markup:
            out.append("Serum Ca<sup>2+</sup> and creatinine levels remained within normal ranges.")
    elif s.design == "rct":
        out.append(f"Adverse events occurred in {rng.randint(8, 45)}% of patients receiving {d} and {rng.randint(8, 45)}% of those receiving placebo; serious adverse events were rare (≤ {rng.randint(2, 6)}%).")
    elif s.design == "cohort":
        out.append(f"During a median follow-up of {rng.randint(2, 9)}.{rng.randint(0, 9)} years, {rng.randint(3, 30) * s.n // 100} events occurred.")
    elif s.design == "association":
        out.append(f"The genotype distribution in controls was consistent with Hardy-Weinberg equilibrium (p = {rng.randint(20, 95) / 100:.2f}).")
    return out


def conclusion(s: Study, rng: random.Random) -> str:
    d, o, dis = _drug(s), x(s.outcome.name), x(s.disease)
    v = s.outcome.direction
    if s.design == "association":
        return {"yes": f"The {x(s.variant[0])} {x(s.variant[1])} polymorphism is associated with an increased risk of {dis}.",
                "none": f"The {x(s.variant[0])} {x(s.variant[1])} polymorphism is not associated with {dis} risk in this population.",
                "mixed": f"Whether the {x(s.variant[1])} polymorphism affects {dis} risk remains uncertain; larger studies are required."}[s.effect]
    return {
        "yes": rng.choice((f"{cap(d)} {v}s {o} in {_model(s)} and may be a promising treatment for {dis}.",
                           f"These findings indicate that {d} {v}s {o} and support further evaluation in {dis}.")),
        "none": f"{cap(d)} does not {v} {o} in {_model(s)}.",
        "opposite": f"{cap(d)} does not {v} {o}; instead, it {'increases' if v == 'reduce' else 'reduces'} {o}, which warrants caution.",
        "mixed": f"Whether {d} {v}s {o} remains unclear; larger studies are needed.",
    }[s.effect]


def _review(s: Study, rng: random.Random) -> list[str]:
    d, dis, tgt = _drug(s), x(s.disease), x(s.drug.target)
    return [f"{cap(dis)} is a leading cause of disability and death.",
            f"{cap(d)}, {'an' if s.drug.drug_class[:1] in 'aeiou' else 'a'} {x(s.drug.drug_class)}, acts on {tgt} and has been evaluated in preclinical and clinical studies of {dis}.",
            f"In this review, we summarise the mechanisms of action of {d}, including its effects on {x(s.gene)} and the {x(s.pathway)} pathway, and discuss clinical evidence on efficacy and safety.",
            rng.choice(("We also highlight open questions on dosing, biomarkers and resistance.",
                        f"Finally, we discuss combination strategies and future directions for research in {dis}."))]


# PubMed labels: (Label, NlmCategory); real abstracts use several spellings for the same category.
SECTION_LABELS = {
    "BACKGROUND": ("BACKGROUND", "INTRODUCTION", "OBJECTIVE", "AIMS"),
    "METHODS": ("METHODS", "MATERIALS AND METHODS", "DESIGN AND METHODS"),
    "RESULTS": ("RESULTS", "FINDINGS"),
    "CONCLUSIONS": ("CONCLUSIONS", "CONCLUSION", "INTERPRETATION"),
}
_CATEGORY_OF_LABEL = {"INTRODUCTION": "BACKGROUND", "OBJECTIVE": "OBJECTIVE", "AIMS": "OBJECTIVE", "FINDINGS": "RESULTS",
                      "CONCLUSION": "CONCLUSIONS", "INTERPRETATION": "CONCLUSIONS"}


@dataclass(frozen=True, slots=True)
class Section:
    label: str  # as printed ("MATERIALS AND METHODS")
    category: str  # NlmCategory ("METHODS")
    xml: str  # an XML fragment (PubMed inline markup)


def sections(s: Study) -> list[Section]:
    """The abstract of a study as labelled sections (a review has one unlabelled section)."""
    rng = random.Random(s.phrasing)
    if s.design == "review":
        return [Section("", "UNASSIGNED", " ".join(_review(s, rng)))]
    parts = {"BACKGROUND": _background(s, rng), "METHODS": _methods(s, rng), "RESULTS": _results(s, rng),
             "CONCLUSIONS": [conclusion(s, rng)]}
    out = []
    for key, sents in parts.items():
        label = rng.choice(SECTION_LABELS[key])
        out.append(Section(label, _CATEGORY_OF_LABEL.get(label, key), " ".join(sents)))
    return out


def question(s: Study) -> str:
    """A PubMedQA-style question; its wording depends only on the study's design, never on its result."""
    d, o = short_name(s.drug), s.outcome.name
    if s.design == "association":
        return f"Is the {s.variant[0]} {s.variant[1]} polymorphism associated with {s.disease} risk?"
    if s.design == "cohort":
        return f"Is {d} use associated with a lower risk of {o} in {s.model}?"
    model = fragment_text(s.model)
    return f"Does {d} {s.outcome.direction} {o} in {model}?"


# --------------------------------------------------------------------------------------------
# Non-English records (fre, ger, spa): vernacular title, bracketed English title, native abstract.
# --------------------------------------------------------------------------------------------
FOREIGN_DISEASE = {
    "fre": {"hypertension": "l'hypertension artérielle", "type 2 diabetes mellitus": "le diabète de type 2",
            "rheumatoid arthritis": "la polyarthrite rhumatoïde", "heart failure": "l'insuffisance cardiaque",
            "asthma": "l'asthme", "epilepsy": "l'épilepsie"},
    "ger": {"hypertension": "arterieller Hypertonie", "type 2 diabetes mellitus": "Typ-2-Diabetes",
            "rheumatoid arthritis": "rheumatoider Arthritis", "heart failure": "Herzinsuffizienz",
            "asthma": "Asthma bronchiale", "epilepsy": "Epilepsie"},
    "spa": {"hypertension": "hipertensión arterial", "type 2 diabetes mellitus": "diabetes mellitus tipo 2",
            "rheumatoid arthritis": "artritis reumatoide", "heart failure": "insuficiencia cardiaca",
            "asthma": "asma", "epilepsy": "epilepsia"},
}
FOREIGN_DRUGS = {"hypertension": ("ramipril", "losartan", "valsartan"), "type 2 diabetes mellitus": ("metformin", "sitagliptin"),
                 "rheumatoid arthritis": ("tocilizumab", "adalimumab"), "heart failure": ("enalapril", "empagliflozin"),
                 "asthma": ("omalizumab",), "epilepsy": ("levetiracetam",)}


@dataclass(frozen=True, slots=True)
class ForeignRecord:
    language: str
    vernacular_title: str
    english_title: str  # already in brackets, as PubMed writes it
    abstract: str  # XML-escaped text in the record's language


def foreign_record(rng: random.Random, language: str) -> ForeignRecord:
    disease = rng.choice(sorted(FOREIGN_DISEASE[language]))
    dis = FOREIGN_DISEASE[language][disease]
    drug = rng.choice(FOREIGN_DRUGS[disease])
    n, weeks, pct, p = rng.randint(30, 400), rng.choice((8, 12, 24)), rng.randint(8, 40), rng.choice(("0,01", "0,03", "0,001"))
    if language == "fre":
        vt = f"Efficacité et tolérance du {drug} dans {dis} : étude prospective"
        ab = (f"Objectif : évaluer l'efficacité du {drug} chez les patients atteints de {dis[dis.find(' ') + 1:] if dis.startswith('le ') or dis.startswith('la ') else dis}. "
              f"Méthodes : {n} patients ont été inclus et traités pendant {weeks} semaines. "
              f"Résultats : le traitement a permis une amélioration significative chez {pct} % des patients (p = {p}). "
              f"Conclusion : le {drug} est une option thérapeutique efficace et bien tolérée.")
    elif language == "ger":
        vt = f"Wirksamkeit und Verträglichkeit von {drug.capitalize()} bei {dis}: eine prospektive Studie"
        ab = (f"Ziel: Die Wirksamkeit von {drug.capitalize()} bei Patienten mit {dis} sollte untersucht werden. "
              f"Methoden: Insgesamt wurden {n} Patienten über {weeks} Wochen behandelt. "
              f"Ergebnisse: Bei {pct} % der Patienten zeigte sich eine signifikante Besserung (p = {p}). "
              f"Schlussfolgerung: {drug.capitalize()} ist eine wirksame und gut verträgliche Therapieoption.")
    else:
        vt = f"Eficacia y seguridad de {drug} en {dis}: estudio prospectivo"
        ab = (f"Objetivo: evaluar la eficacia de {drug} en pacientes con {dis}. "
              f"Métodos: se incluyeron {n} pacientes tratados durante {weeks} semanas. "
              f"Resultados: se observó una mejoría significativa en el {pct} % de los pacientes (p = {p}). "
              f"Conclusiones: {drug} es una opción terapéutica eficaz y bien tolerada.")
    et = f"[Efficacy and safety of {drug} in {disease}: a prospective study]."
    return ForeignRecord(language, x(vt) + ".", x(et), x(ab))


# --------------------------------------------------------------------------------------------
# People, places, journals
# --------------------------------------------------------------------------------------------
SURNAMES = ("Wang", "Li", "Zhang", "Chen", "Liu", "Müller", "Schmidt", "García", "Martínez", "Rossi", "Bianchi",
            "Smith", "Johnson", "Brown", "Kim", "Park", "Lee", "Tanaka", "Suzuki", "Sato", "Dubois", "Lefèvre",
            "Nguyen", "Kumar", "Singh", "Patel", "Silva", "Santos", "Novak", "Kowalski", "Andersson", "Jansen",
            "O'Brien", "Murphy", "Cohen", "Ahmed", "Hassan", "Yilmaz", "Ivanova", "Petrov")
FORENAMES = ("Wei", "Jing", "Hao", "Yan", "Anna", "Thomas", "María", "José", "Giulia", "Marco", "John", "Sarah",
             "Min-Jun", "Ji-Woo", "Hiroshi", "Yuki", "Claire", "Pierre", "Minh", "Arjun", "Priya", "Ana", "Pedro",
             "Jan", "Eva", "Lars", "Sofia", "Sean", "Rachel", "Omar", "Fatma", "Mehmet", "Olga", "Dmitri")
DEPARTMENTS = ("Department of Pharmacology", "Department of Oncology", "Department of Cardiology",
               "Department of Endocrinology and Metabolism", "Department of Rheumatology", "Department of Neurology",
               "School of Pharmaceutical Sciences", "Institute of Medical Microbiology", "Department of Internal Medicine")
CITIES = (("Shanghai", "China"), ("Beijing", "China"), ("Munich", "Germany"), ("Lyon", "France"), ("Madrid", "Spain"),
          ("Milan", "Italy"), ("Boston, MA", "USA"), ("Toronto, ON", "Canada"), ("Seoul", "Korea"), ("Osaka", "Japan"),
          ("São Paulo", "Brazil"), ("Mumbai", "India"), ("Leiden", "Netherlands"), ("Uppsala", "Sweden"))


@dataclass(frozen=True, slots=True)
class Journal:
    title: str
    iso: str
    issn: str
    country: str
    nlm_id: str


def _issn(n: int) -> str:
    digits = f"{n:07d}"
    s = sum(int(c) * w for c, w in zip(digits, range(8, 1, -1), strict=True))
    check = (11 - s % 11) % 11
    return f"{digits[:4]}-{digits[4:]}{'X' if check == 10 else check}"


_JOURNAL_NAMES = (
    ("Journal of Translational Pharmacology", "J Transl Pharmacol"),
    ("Clinical and Experimental Oncology Reports", "Clin Exp Oncol Rep"),
    ("International Journal of Cardiometabolic Research", "Int J Cardiometab Res"),
    ("Frontiers in Inflammation Biology", "Front Inflamm Biol"),
    ("Annals of Clinical Neuroscience Research", "Ann Clin Neurosci Res"),
    ("Molecular Medicine Letters", "Mol Med Lett"),
    ("European Journal of Drug Research", "Eur J Drug Res"),
    ("Journal of Medical Mycology and Infection", "J Med Mycol Infect"),
    ("Bone and Mineral Investigation", "Bone Miner Invest"),
    ("Revue de Médecine Clinique", "Rev Med Clin"),
    ("Zeitschrift für Klinische Pharmakologie", "Z Klin Pharmakol"),
    ("Revista de Investigación Clínica Aplicada", "Rev Invest Clin Apl"),
)
JOURNALS: tuple[Journal, ...] = tuple(
    Journal(t, iso, _issn(1830010 + 37 * i), ("United States", "England", "Switzerland", "Netherlands", "France", "Germany", "Spain")[i % 7]
            if i < 9 else ("France", "Germany", "Spain")[i - 9], f"10{i + 1:02d}1{i * 7 % 10}{i % 5}0")
    for i, (t, iso) in enumerate(_JOURNAL_NAMES)
)
LANGUAGE_JOURNAL = {"fre": JOURNALS[9], "ger": JOURNALS[10], "spa": JOURNALS[11]}

# MeSH descriptors (name, UI) per area plus check tags; for format realism only.
MESH_COMMON = (("Humans", "D006801"), ("Animals", "D000818"), ("Male", "D008297"), ("Female", "D005260"),
               ("Middle Aged", "D008875"), ("Adult", "D000328"), ("Aged", "D000368"))
MESH_AREA = {
    "oncology": (("Neoplasms", "D009369"), ("Antineoplastic Agents", "D000970"), ("Apoptosis", "D017209"),
                 ("Cell Proliferation", "D049109"), ("Protein Kinase Inhibitors", "D047428")),
    "metabolic": (("Diabetes Mellitus, Type 2", "D003924"), ("Blood Glucose", "D001786"), ("Hypoglycemic Agents", "D007004")),
    "cardiovascular": (("Hypertension", "D006973"), ("Heart Failure", "D006333"), ("Blood Pressure", "D001794")),
    "inflammation": (("Inflammation", "D007249"), ("Arthritis, Rheumatoid", "D001172"), ("Cytokines", "D016207")),
    "bone": (("Osteoporosis", "D010024"), ("Bone Density", "D015519")),
    "infection": (("Antifungal Agents", "D000935"), ("Candidiasis, Invasive", "D058365")),
    "neuro": (("Alzheimer Disease", "D000544"), ("Neuroprotective Agents", "D018696")),
}
MESH_DESIGN = {"cell": (("Cell Line, Tumor", "D045744"), ("Signal Transduction", "D015398")),
               "animal": (("Disease Models, Animal", "D004195"), ("Mice", "D051379")),
               "rct": (("Double-Blind Method", "D004311"), ("Treatment Outcome", "D016896")),
               "cohort": (("Retrospective Studies", "D012189"), ("Risk Factors", "D012307")),
               "association": (("Polymorphism, Single Nucleotide", "D020641"), ("Genetic Predisposition to Disease", "D020022")),
               "review": ()}
PUBTYPES = {"Journal Article": "D016428", "Review": "D016454", "Randomized Controlled Trial": "D016449",
            "Retracted Publication": "D016441", "Retraction of Publication": "D016440",
            "Published Erratum": "D016425", "Comment": "D016420", "Letter": "D016422", "Editorial": "D016421",
            "English Abstract": "D004740", "Multicenter Study": "D016448"}


# --------------------------------------------------------------------------------------------
# Markup conversion
# --------------------------------------------------------------------------------------------
_PUBMED_TO_JATS = {"i": "italic", "b": "bold", "u": "underline"}


def jats_markup(fragment: str) -> str:
    """PubMed inline tags -> JATS ones (`<i>` -> `<italic>`); `<sup>`, `<sub>` and MathML stay."""
    return re.sub(r"<(/?)(i|b|u)>", lambda m: f"<{m.group(1)}{_PUBMED_TO_JATS[m.group(2)]}>", fragment)


def fragment_text(fragment: str) -> str:
    """The plain text of an XML fragment (markup dropped, entities decoded)."""
    root = etree.fromstring(f'<x xmlns:mml="{MATHML_NS}">{fragment}</x>'.encode())
    return "".join(root.itertext())
