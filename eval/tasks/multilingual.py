"""Global MMLU of the authors' suites on lighteval 0.13: culturally-agnostic CF (base) and instruct (generative).

Usage: from eval.tasks.multilingual import build; configs = build(datasets_dir=None)

The suite specs `lighteval|global_mmlu_ca_<lang>_cf|0|1` (smollm3_base.txt) and
`extended|global_mmlu_instruct_<lang>|0|0` (smollm3_instruct.txt) name built-in tasks of lighteval 2788496 (the
commit the authors ran) that 0.13 no longer has (0.13: only global_mmlu_all_<lang>_mcf). Both are written out
here from that commit ("ml/tasks.py Lnn" = src/lighteval/tasks/multilingual/tasks.py, "smollm/global_mmlu.py
Lnn" = src/lighteval/tasks/extended/smollm/global_mmlu.py, "extractive_match_utils.py Lnn" =
src/lighteval/metrics/utils/extractive_match_utils.py, all @2788496c3ef9973a24c7d8b87ee5b2cceb430872). The mcq
template, CF formulation and the translation literals of these 8 languages are unchanged in 0.13; the answer
letter extraction regexes changed, so 2788496's are written out (letter_regexes). Differences: eval/README.md.
"""

from __future__ import annotations

import re
from functools import lru_cache, partial
from string import ascii_uppercase

import numpy as np
from lighteval.metrics.metrics_sample import PassAtK
from lighteval.metrics.utils.extractive_match_utils import IndicesExtractionConfig, extract_target_from_pred
from lighteval.metrics.utils.math_comparison import compare_gold_target
from lighteval.metrics.utils.metric_utils import SampleLevelMetric
from lighteval.tasks.multilingual.utils.task_utils import get_metrics_for_formulation
from lighteval.tasks.requests import Doc, SamplingMethod
from lighteval.tasks.templates.multichoice import get_mcq_prompt_function
from lighteval.tasks.templates.utils.formulation import CFFormulation, get_prefix
from lighteval.tasks.templates.utils.translation_literals import TRANSLATION_LITERALS
from lighteval.utils.language import Language

from eval.tasks.common import qa_metrics, task_config
from eval.tasks.mc import MMLU_SUBSETS  # the same 57 subjects, same order, as ml/tasks.py L1609-1667

GLOBAL_MMLU = "CohereForAI/Global-MMLU"  # no revision pinned at 2788496 (ml/tasks.py L1858, global_mmlu.py L83)
# The 8 languages of smollm3_base.txt; the Hub config is standardize_tag(language.value) (ml/tasks.py L1859)
CA_LANGUAGES = {Language.ARABIC: "ar", Language.RUSSIAN: "ru", Language.CHINESE: "zh", Language.GERMAN: "de",
                Language.FRENCH: "fr", Language.ITALIAN: "it", Language.PORTUGUESE: "pt", Language.SPANISH: "es"}
# The 5 languages of smollm3_instruct.txt (global_mmlu.py L115-160 pairs each with its Hub config)
INSTRUCT_LANGUAGES = {Language.GERMAN: "de", Language.FRENCH: "fr", Language.ITALIAN: "it",
                      Language.PORTUGUESE: "pt", Language.SPANISH: "es"}


# ---------------------------------------------------------------- culturally-agnostic CF (base suite)
def global_mmlu_adapter(line):  # ml/tasks.py L1850-1854
    return {"question": line["question"],
            "choices": [line["option_a"], line["option_b"], line["option_c"], line["option_d"]],
            "gold_idx": ascii_uppercase.index(line["answer"])}


def sensitivity_filter(subset: str, sensitivity_label: str, line) -> bool:
    """ml/tasks.py L1862-1870: the subject, the label ("-" = UNK; "ALL" keeps every row), four non-empty options."""
    return (line["subject"].lower() == subset
            and (sensitivity_label == "ALL"
                 or sensitivity_label in line["cultural_sensitivity_label"].replace("-", "UNK"))
            and all(line[f"option_{opt}"] is not None and line[f"option_{opt}"].strip() for opt in "abcd"))


def build_ca_cf(datasets_dir=None) -> list:
    """global_mmlu_ca_<lang>_cf:<57 subjects> for the 8 languages: ml/tasks.py L1845-1923 with sensitivity_label
    "CA" and CFFormulation; its metrics minus the PMI one, as the authors' tasks.py (L715-721) strips PMI
    metrics from every task of its TASKS_TABLE, which holds lighteval's multilingual tasks (tasks.py L71-72)."""
    cf = CFFormulation()
    return [task_config(f"global_mmlu_ca_{language.value}_cf:{subset}",
                        get_mcq_prompt_function(language, global_mmlu_adapter, formulation=cf),
                        GLOBAL_MMLU, config, None, datasets_dir, evaluation_splits=("test",), few_shots_split="dev",
                        hf_filter=partial(sensitivity_filter, subset, "CA"),
                        metrics=get_metrics_for_formulation(cf, qa_metrics()))
            for subset in MMLU_SUBSETS for language, config in CA_LANGUAGES.items()]


# ---------------------------------------------------------------- instruct (generative, letter extraction)
TEMPLATES = {  # smollm/global_mmlu.py L47-52 (English is the fallback; the suite runs de, fr, it, pt, es)
    "en": "Given the following query and answer choices, output the letter corresponding to the correct answer. The last line of your response should be of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of A, B, C, or D. Think step by step before answering.\n\n###\nQuery:\n{Question}\n###\nChoices:\nA) {A}\nB) {B}\nC) {C}\nD) {D}",  # noqa: E501
    "de": "Gib basierend auf der folgenden Frage und den Antwortmöglichkeiten den Buchstaben aus, der der richtigen Antwort entspricht. Die letzte Zeile deiner Antwort sollte folgendes Format haben: 'Antwort: $BUCHSTABE' (ohne Anführungszeichen), wobei BUCHSTABE einer der folgenden ist: A, B, C oder D. Denke Schritt für Schritt, bevor du antwortest.\n\n###\nFrage:\n{Question}\n###\nAntwortmöglichkeiten:\nA) {A}\nB) {B}\nC) {C}\nD) {D}",  # noqa: E501
    "fr": "A partir de la question et des choix de réponses suivants, indiquez la lettre correspondant à la bonne réponse. La dernière ligne de votre réponse doit avoir le format suivant : 'Réponse: $LETTRE' (sans les guillemets) où LETTRE est l'une des lettres: A, B, C ou D. Réfléchissez étape par étape avant de répondre.\n\n###\nRequête:\n{Question}\n###\nChoix:\nA) {A}\nB) {B}\nC) {C}\nD) {D}",  # noqa: E501
    "it": "Dato il seguente quesito e le diverse opzioni per una risposta, indicare la lettera corrispondente alla risposta corretta. L'ultima riga della risposta deve avere il seguente formato: 'Risposta: $LETTERA' (senza virgolette), e LETTERA è necessariamente una tra A, B, C, D. Prima di rispondere, è importante che si ragioni passo per passo.\n\n###\nQuesito:\n{Question}\n###\nOpzioni:\nA) {A}\nB) {B}\nC) {C}\nD) {D}",  # noqa: E501
    "pt": "Tendo em conta a seguinte pergunta e opções de resposta, indique a letra correspondente à resposta correta. A última linha da sua resposta deve ter o seguinte formato: 'Resposta: $LETRA' (sem aspas) em que LETRA é uma de A, B, C ou D. Pense passo a passo antes de responder.\n\n###\nPergunta:\n{Question}\n###\nOpções:\nA) {A}\nB) {B}\nC) {C}\nD) {D}",  # noqa: E501
    "es": "Dado el siguiente pregunta y opciones para la respuesta, escriba la letra correspondiente a la respuesta correcta. La última línea de su respuesta debe seguir el siguiente formato: 'Respuesta: $LETTER' (sin comillas) donde LETTER es A, B, C o D. Piense paso a paso antes de responder.\n\n###\nPregunta:\n{Question}\n###\nOpciones:\nA) {A}\nB) {B}\nC) {C}\nD) {D}",  # noqa: E501
}


def instruct_prompt(lang: str, line, task_name: str = None) -> Doc:
    """smollm/global_mmlu.py L55-75. Its Doc also carried instruction = the template up to "###\\n", which
    lighteval 2788496 removed from the query and put back in front (the same text); 0.13's PromptManager would
    strip the query's end (chat template) or add a blank line (plain text), so the instruction stays in the
    query alone and the model reads 2788496's text (0-shot, as the suite runs it)."""
    choices = [line["option_a"], line["option_b"], line["option_c"], line["option_d"]]
    template = TEMPLATES[lang if lang in TEMPLATES else "en"]
    query = template.format(A=choices[0], B=choices[1], C=choices[2], D=choices[3], Question=line["question"])
    return Doc(task_name=task_name, query=query, choices=list(ascii_uppercase[: len(choices)]),
               gold_index=ascii_uppercase.index(line["answer"]))


LETTERS = IndicesExtractionConfig(prefix_for_extraction="Letters", try_extract_without_anchor=False)


@lru_cache(maxsize=32)
def letter_regexes(language: Language, len_choices: int) -> list:
    """lazy_indices_regex of lighteval 2788496 (extractive_match_utils.py L282-343) for LETTERS. 0.13 changed it:
    its space is the literal's sentence space only (no newline after "Antwort: B"), and "B)" lost its ")"."""
    lit = TRANSLATION_LITERALS[language]
    indices = get_prefix(LETTERS.prefix_for_extraction, lit)[:len_choices]
    wrapped = [rf"(?:{i}|\({i}\))" for i in map(re.escape, indices)]  # A or (A)
    indice_str_re = f"(?P<indices>{'|'.join(wrapped)})"
    full_stop_re = rf"[{re.escape(lit.full_stop)}\.]"
    comma_re = rf"[{re.escape(lit.comma)}\,]"
    colon_re = rf"[{re.escape(lit.colon)}\:]"
    space_re = rf"(?:\s|{re.escape(lit.sentence_space)})"
    answer_prefix_re = rf"(?:^|{space_re})(?:\*\*)?"
    answer_suffix_re = rf"(?:\))?(?:\*\*)?(?:{full_stop_re}|{comma_re}|{colon_re}|{space_re}|$)"
    answer_re = rf"{answer_prefix_re}{indice_str_re}{answer_suffix_re}"
    answer_word = f"(?i:{lit.answer})"
    regexes = []
    if language == Language.ENGLISH:
        regexes += [(rf"(?i:final answer is)\:?\s*{indice_str_re}\.?\s?I hope", 0),
                    (rf"(?i:final answer.{{0,100}}?)\s+is\:?\s*{indice_str_re}", 50)]
    regexes += [(f"{answer_word}{colon_re}.{{0,50}}?{answer_re}", 100), (f"{answer_word}.{{0,50}}?{answer_re}", 150),
                (rf"^(?:\*\*)?{indice_str_re}{answer_suffix_re}", 200),
                (rf"\n(?:\*\*)?{indice_str_re}{answer_suffix_re}", 210)]
    return [(re.compile(pattern), priority) for pattern, priority in regexes]  # no anchor-free patterns


def letter_match(language: Language, doc: Doc, model_response) -> float:
    """multilingual_extractive_match_metric(language, gold and prediction = LETTERS, precision 6) of 2788496
    (dynamic_metrics.py L188-296: fallback first_match, any_match, timeout 5, max over predictions), as
    smollm/global_mmlu.py L93-102 scores one sample."""
    targets = [(letter_regexes(language, len(doc.choices)), LETTERS)]
    golds = [doc.get_golds()[0]]
    extracted_golds = [extract_target_from_pred(g, targets, "first_match", "any_match", 5) for g in golds]
    if any(len(g) == 0 for g in extracted_golds):
        extracted_golds = [[g] for g in golds]
    extracted = [extract_target_from_pred(p, targets, "first_match", "any_match", 5) for p in model_response.text]
    return max(1.0 if any(compare_gold_target(g, p, 6, timeout_seconds=5) for g in extracted_golds) else 0.0
               for p in extracted)


def instruct_metric(language: Language) -> SampleLevelMetric:
    """smollm/global_mmlu.py L87-109: pass@1 of 1 sample, each scored by letter_match."""
    def score(doc, model_response):  # a named function: lighteval's cache hashes the metric by its __name__
        return letter_match(language, doc, model_response)

    score.__name__ = f"letter_match_{language.value}"
    return SampleLevelMetric(metric_name="pass@1:1_samples",
                             sample_level_fn=PassAtK(k=1, n=1, sample_scoring_function=score),
                             category=SamplingMethod.GENERATIVE, corpus_level_fn=np.mean, higher_is_better=True)


def build_instruct(datasets_dir=None) -> list:
    """global_mmlu_instruct_<lang> for de, fr, it, pt, es: smollm/global_mmlu.py L78-112."""
    return [task_config(f"global_mmlu_instruct_{language.value}", partial(instruct_prompt, lang), GLOBAL_MMLU, lang,
                        None, datasets_dir, evaluation_splits=("test",), few_shots_split="dev",
                        metrics=[instruct_metric(language)], generation_size=30000, stop_sequence=[])
            for language, lang in INSTRUCT_LANGUAGES.items()]


def build(datasets_dir=None) -> list:
    """Configs of global_mmlu_ca_<8 langs>_cf:<57 subjects> and global_mmlu_instruct_<5 langs>."""
    return build_ca_cf(datasets_dir) + build_instruct(datasets_dir)
