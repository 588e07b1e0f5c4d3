"""Global MMLU of the authors' suites (eval/tasks/multilingual.py) on lighteval 0.13: definitions, prompts, metrics.

Offline, on CPU, with tests/fixtures/eval_datasets/CohereForAI/Global-MMLU.jsonl written in the Hub layout and
read through $SMOLLM3_EVAL_DATASETS; lighteval's LightevalTask loads and filters it, its PromptManager builds the
context, and the end-to-end run goes through eval.run.run_eval on a tiny random model. Every expected value is
written by hand from lighteval 2788496c3ef9973a24c7d8b87ee5b2cceb430872 (the authors' pin): "ml/tasks.py Lnn" =
src/lighteval/tasks/multilingual/tasks.py, "global_mmlu.py Lnn" = src/lighteval/tasks/extended/smollm/global_mmlu.py,
"multichoice.py" / "translation_literals.py" = src/lighteval/tasks/templates/{multichoice.py, utils/...} (the same
in 0.13 for these languages); none is read from eval/tasks.
"""

import copy

import pytest

from eval.lighteval_compat import hide_nanotron_from_lighteval  # noqa: E402

hide_nanotron_from_lighteval()

from lighteval.models.model_output import ModelResponse  # noqa: E402
from lighteval.tasks.lighteval_task import LightevalTask  # noqa: E402
from lighteval.tasks.prompt_manager import PromptManager  # noqa: E402

from eval.tasks import DATASETS_ENV, all_task_configs  # noqa: E402

CA = {"ara": "ar", "rus": "ru", "zho": "zh", "deu": "de", "fra": "fr", "ita": "it", "por": "pt", "spa": "es"}
INSTRUCT = {"deu": "de", "fra": "fr", "ita": "it", "por": "pt", "spa": "es"}  # smollm3_instruct.txt
CF = ["acc_norm_token", "acc_norm"]  # ml/tasks.py L1871-1878 minus PMI (the authors' tasks.py L715-721)



@pytest.fixture(scope="module")
def local(hub):
    return {c.name: c for c in all_task_configs(hub)}


def docs(config):
    return LightevalTask(copy.deepcopy(config)).eval_docs()


def context(doc) -> str:
    return PromptManager(use_chat_template=False).prepare_prompt(doc)


# --------------------------------------------------------------------------- definitions
def test_task_names():
    from eval.tasks.mc import MMLU_SUBSETS

    names = {c.name for c in all_task_configs("")}
    ours = {n for n in names if n.startswith("global_mmlu")}
    assert ours == {f"global_mmlu_ca_{lang}_cf:{s}" for lang in CA for s in MMLU_SUBSETS} | \
        {f"global_mmlu_instruct_{lang}" for lang in INSTRUCT}
    assert len(ours) == 8 * 57 + 5


@pytest.mark.parametrize("lang", sorted(CA))
def test_ca_definition(lang):
    c = {c.name: c for c in all_task_configs("")}[f"global_mmlu_ca_{lang}_cf:anatomy"]
    task = LightevalTask(c)
    # ml/tasks.py L1858-1861: no revision, config standardize_tag(language), test split, few-shot split dev
    assert (c.hf_repo, c.hf_revision, c.hf_subset, tuple(c.evaluation_splits), task.fewshot_split) == \
        ("CohereForAI/Global-MMLU", None, CA[lang], ("test",), "dev")
    assert [m.metric_name for m in c.metrics] == CF


@pytest.mark.parametrize("lang", sorted(INSTRUCT))
def test_instruct_definition(lang):
    c = {c.name: c for c in all_task_configs("")}[f"global_mmlu_instruct_{lang}"]
    # global_mmlu.py L79-111: subset = the language's code, test / dev, generation 30000, no stop sequence, pass@1
    assert (c.hf_repo, c.hf_revision, c.hf_subset, tuple(c.evaluation_splits), c.few_shots_split) == \
        ("CohereForAI/Global-MMLU", None, INSTRUCT[lang], ("test",), "dev")
    assert (c.generation_size, list(c.stop_sequence), [m.metric_name for m in c.metrics]) == \
        (30000, [], ["pass@1:1_samples"])


def test_culturally_agnostic_filter(local):
    """ml/tasks.py L1862-1870: subject, label CA ("-" is UNK, CS out), four non-blank options. The fixture's test
    split per language: algebra CA, algebra CS, algebra "-", algebra CA with a blank option D, anatomy CA."""
    for lang in CA:
        kept = [d.choices for d in docs(local[f"global_mmlu_ca_{lang}_cf:abstract_algebra"])]
        assert len(kept) == 1 and kept[0][3].strip() == "3", lang
        assert len(docs(local[f"global_mmlu_ca_{lang}_cf:anatomy"])) == 1
        assert docs(local[f"global_mmlu_ca_{lang}_cf:virology"]) == []
    assert len(docs(local["global_mmlu_instruct_deu"])) == 5  # the instruct tasks keep every row


# --------------------------------------------------------------------------- prompts
# mcq CF (multichoice.py L36-38, formulation.py build_answers): "{Question word}{colon}{sentence space}{question}\n
# {Answer word}{colon}", question and choices capitalised, their final "?" / "." in the language's punctuation
# (formatting_utils.py fix_ending_punct), each choice = sentence space + choice. Literals (translation_literals.py):
# ar سؤال / إجابة, "؟"; ru вопрос / ответ; zh 问题 / 答案, colon "：", sentence space "", "？"; de frage / antwort;
# fr question / réponse; it domanda / risposta; pt pergunta / resposta; es pregunta / respuesta.
ANATOMY = {  # the anatomy row (gold D) of each language's fixture
    "ara": ("سؤال: ما هو الأصل الجنيني للعظم اللامي؟\nإجابة:",
            [" القوس البلعومي الأول", " القوسان البلعوميان الأول والثاني", " القوس البلعومي الثاني",
             " القوسان البلعوميان الثاني والثالث"]),
    "rus": ("Вопрос: Каково эмбриологическое происхождение подъязычной кости?\nОтвет:",
            [" Первая глоточная дуга", " Первая и вторая глоточные дуги", " Вторая глоточная дуга",
             " Вторая и третья глоточные дуги"]),
    "zho": ("问题：舌骨的胚胎学起源是什么？\n答案：", ["第一咽弓", "第一和第二咽弓", "第二咽弓", "第二和第三咽弓"]),
    "deu": ("Frage: Was ist der embryologische Ursprung des Zungenbeins?\nAntwort:",
            [" Der erste Schlundbogen", " Der erste und zweite Schlundbogen", " Der zweite Schlundbogen",
             " Der zweite und dritte Schlundbogen"]),
    "fra": ("Question: Quelle est l'origine embryologique de l'os hyoïde ?\nRéponse:",
            [" Le premier arc pharyngien", " Les premier et deuxième arcs pharyngiens", " Le deuxième arc pharyngien",
             " Les deuxième et troisième arcs pharyngiens"]),
    "ita": ("Domanda: Qual è l'origine embriologica dell'osso ioide?\nRisposta:",
            [" Il primo arco faringeo", " Il primo e il secondo arco faringeo", " Il secondo arco faringeo",
             " Il secondo e il terzo arco faringeo"]),
    "por": ("Pergunta: Qual é a origem embriológica do osso hioide?\nResposta:",
            [" O primeiro arco faríngeo", " O primeiro e o segundo arcos faríngeos", " O segundo arco faríngeo",
             " O segundo e o terceiro arcos faríngeos"]),
    "spa": ("Pregunta: ¿Cuál es el origen embriológico del hueso hioides?\nRespuesta:",
            [" El primer arco faríngeo", " El primer y el segundo arco faríngeo", " El segundo arco faríngeo",
             " El segundo y el tercer arco faríngeo"]),
}


@pytest.mark.parametrize("lang", sorted(CA))
def test_ca_prompt(local, lang):
    (doc,) = docs(local[f"global_mmlu_ca_{lang}_cf:anatomy"])
    query, choices = ANATOMY[lang]
    assert (doc.query, doc.choices, doc.gold_index) == (query, choices, [3])
    assert context(doc) == query  # 0-shot: the query alone


def test_ca_prompt_keeps_chinese_full_stop(local):
    (doc,) = docs(local["global_mmlu_ca_zho_cf:abstract_algebra"])
    assert doc.query == "问题：求 Z_3 中所有使 Z_3[x]/(x^2 + c) 为域的 c。\n答案："
    assert (doc.choices, doc.gold_index) == (["0", "1", "2", "3"], [1])


# global_mmlu.py L47-52, filled with the fixture's first test row (the algebra question, options 0 1 2 3, gold B)
INSTRUCT_QUERIES = {
    "deu": "Gib basierend auf der folgenden Frage und den Antwortmöglichkeiten den Buchstaben aus, der der richtigen "
           "Antwort entspricht. Die letzte Zeile deiner Antwort sollte folgendes Format haben: 'Antwort: $BUCHSTABE' "
           "(ohne Anführungszeichen), wobei BUCHSTABE einer der folgenden ist: A, B, C oder D. Denke Schritt für "
           "Schritt, bevor du antwortest.\n\n###\nFrage:\nFinde alle c in Z_3, so dass Z_3[x]/(x^2 + c) ein Körper "
           "ist.\n###\nAntwortmöglichkeiten:\nA) 0\nB) 1\nC) 2\nD) 3",
    "fra": "A partir de la question et des choix de réponses suivants, indiquez la lettre correspondant à la bonne "
           "réponse. La dernière ligne de votre réponse doit avoir le format suivant : 'Réponse: $LETTRE' (sans les "
           "guillemets) où LETTRE est l'une des lettres: A, B, C ou D. Réfléchissez étape par étape avant de "
           "répondre.\n\n###\nRequête:\nTrouvez tous les c dans Z_3 tels que Z_3[x]/(x^2 + c) soit un corps.\n###\n"
           "Choix:\nA) 0\nB) 1\nC) 2\nD) 3",
    "ita": "Dato il seguente quesito e le diverse opzioni per una risposta, indicare la lettera corrispondente alla "
           "risposta corretta. L'ultima riga della risposta deve avere il seguente formato: 'Risposta: $LETTERA' "
           "(senza virgolette), e LETTERA è necessariamente una tra A, B, C, D. Prima di rispondere, è importante "
           "che si ragioni passo per passo.\n\n###\nQuesito:\nTrova tutti i c in Z_3 tali che Z_3[x]/(x^2 + c) sia "
           "un campo.\n###\nOpzioni:\nA) 0\nB) 1\nC) 2\nD) 3",
    "por": "Tendo em conta a seguinte pergunta e opções de resposta, indique a letra correspondente à resposta "
           "correta. A última linha da sua resposta deve ter o seguinte formato: 'Resposta: $LETRA' (sem aspas) em "
           "que LETRA é uma de A, B, C ou D. Pense passo a passo antes de responder.\n\n###\nPergunta:\nEncontre "
           "todos os c em Z_3 tais que Z_3[x]/(x^2 + c) seja um corpo.\n###\nOpções:\nA) 0\nB) 1\nC) 2\nD) 3",
    "spa": "Dado el siguiente pregunta y opciones para la respuesta, escriba la letra correspondiente a la respuesta "
           "correcta. La última línea de su respuesta debe seguir el siguiente formato: 'Respuesta: $LETTER' (sin "
           "comillas) donde LETTER es A, B, C o D. Piense paso a paso antes de responder.\n\n###\nPregunta:\n"
           "Encuentra todos los c en Z_3 tales que Z_3[x]/(x^2 + c) sea un cuerpo.\n###\nOpciones:\nA) 0\nB) 1\n"
           "C) 2\nD) 3",
}


@pytest.mark.parametrize("lang", sorted(INSTRUCT))
def test_instruct_prompt(local, lang):
    doc = docs(local[f"global_mmlu_instruct_{lang}"])[0]
    assert (doc.query, doc.choices, doc.gold_index) == (INSTRUCT_QUERIES[lang], ["A", "B", "C", "D"], 1)
    # lighteval 2788496 put the instruction (template up to "###\n") back in front of the rest: the query as is
    assert context(doc) == INSTRUCT_QUERIES[lang]


# --------------------------------------------------------------------------- metrics on hand-made responses
def test_ca_loglikelihood_normalisations(local):
    (doc,) = docs(local["global_mmlu_ca_deu_cf:anatomy"])  # gold D " Der zweite und dritte Schlundbogen" (35 chars)
    response = ModelResponse(logprobs=[-5.0, -20.0, -20.0, -12.0], output_tokens=[[1], [1], [1], [1, 2, 3, 4]])
    scores = {}
    for m in local["global_mmlu_ca_deu_cf:anatomy"].metrics:
        scores.update(m.compute_sample(doc=doc, model_response=response))
    # per token: -5, -20, -20, -3 -> D (right); per character: A -5/23 = -0.22 beats D -12/35 = -0.34 (wrong)
    assert scores == {"acc_norm_token": 1, "acc_norm": 0}


@pytest.mark.parametrize("lang,answer,score", [
    ("deu", "Schritt 1: ...\nAntwort: B", 1),
    ("deu", "Antwort: B\nDenn 1 + 1 ist in Z_3 ...", 1),  # 2788496: any space after the letter (0.13: not \n)
    ("deu", "Antwort: B) 1", 1),  # 2788496 allows ")" after the letter (0.13 does not)
    ("deu", "Antwort: (B)", 1),
    ("deu", "Antwort: C", 0),
    ("deu", "Die Lösung ist wohl 1", 0),  # no anchor: try_extract_without_anchor=False
    ("deu", "B", 1),  # start of the answer
    ("fra", "Réponse: **B**", 1),
    ("ita", "risposta: B.", 1),  # answer word case-insensitive
    ("por", "Resposta: D", 0),
    ("spa", "Primero...\nRespuesta: B", 1),
    ("spa", "", 0),
])
def test_letter_extraction(local, lang, answer, score):
    """global_mmlu.py L87-109 with 2788496's indices regexes (extractive_match_utils.py L282-343): gold "B"."""
    name = f"global_mmlu_instruct_{lang}"
    doc = docs(local[name])[0]
    (metric,) = local[name].metrics
    assert metric.compute_sample(doc=doc, model_response=ModelResponse(text=[answer]))["pass@1:1_samples"] == score


# --------------------------------------------------------------------------- end to end (eval.run, lighteval)
@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.eval_fixtures import make_tiny_model

    return make_tiny_model(tmp_path_factory.mktemp("tiny"), chat=True)


def _suite(tmp_path, monkeypatch, lines, chat):
    from eval import specs

    (tmp_path / "x.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "published.yaml").write_text(
        f"suites:\n  x: {{file: x.txt, backend: transformers, use_chat_template: {chat}, system_prompt: null, "
        "generation: {temperature: 0.0, max_new_tokens: 8}}\ncustom_tasks: {}\nnot_in_lighteval_0_13: {}\n")
    monkeypatch.setattr(specs, "SUITES_DIR", tmp_path)
    specs._suites_yaml.cache_clear()


@pytest.mark.slow
def test_ca_cf_end_to_end(hub, tiny_model, tmp_path, monkeypatch):
    """The 8 base-suite specs through eval.run (~25 s): every language's non-empty subjects scored, the subjects
    the CA filter empties (here all but two) left out, as lighteval 2788496 ran them."""
    from eval import specs
    from eval.run import run_eval

    _suite(tmp_path, monkeypatch, [f"lighteval|global_mmlu_ca_{lang}_cf|0|1" for lang in CA], "false")
    monkeypatch.setenv(DATASETS_ENV, str(hub))
    try:
        scores = run_eval(tiny_model, "x", tmp_path / "out", max_samples=1, max_length=512, dtype="float32",
                          save_details=False)
    finally:
        specs._suites_yaml.cache_clear()
    expected = {f"global_mmlu_ca_{lang}_cf:{s}|0" for lang in CA for s in ("abstract_algebra", "anatomy", "_average")}
    assert set(scores) == expected
    assert all(sorted(v) == sorted(CF) and all(0 <= x <= 1 for x in v.values()) for v in scores.values())


@pytest.mark.slow
def test_instruct_end_to_end(hub, tiny_model, tmp_path, monkeypatch):
    """The 5 instruct-suite specs through eval.run with the chat template (~5 s)."""
    from eval import specs
    from eval.run import run_eval

    _suite(tmp_path, monkeypatch, [f"extended|global_mmlu_instruct_{lang}|0|0" for lang in INSTRUCT], "true")
    monkeypatch.setenv(DATASETS_ENV, str(hub))
    try:
        scores = run_eval(tiny_model, "x", tmp_path / "out", max_samples=2, max_length=512, dtype="float32",
                          save_details=False)
    finally:
        specs._suites_yaml.cache_clear()
    assert set(scores) == {f"global_mmlu_instruct_{lang}|0" for lang in INSTRUCT}
    assert all(list(v) == ["pass@1:1_samples"] and 0 <= v["pass@1:1_samples"] <= 1 for v in scores.values())
